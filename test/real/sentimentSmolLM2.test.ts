// The real tier's sentiment tests on SmolLM2-135M-Instruct (the model the reply tests run on); skipped
// when REAL_MODEL is set. The tests themselves are in sentimentSuite.ts.
import { realSentimentModel } from '../support/realModel.js';
import { describeSentimentOn } from './sentimentSuite.js';

describeSentimentOn('smollm2', realSentimentModel('smollm2'));
