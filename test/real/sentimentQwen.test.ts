// The real tier's sentiment tests on the Qwen2.5-class 0.5B (the default's architecture, tokenizer and
// template), or on REAL_MODEL when set. The tests themselves are in sentimentSuite.ts.
import { realSentimentModel } from '../support/realModel.js';
import { describeSentimentOn } from './sentimentSuite.js';

describeSentimentOn('qwen', realSentimentModel('qwen'));
