// The facts the recall tests tell a channel and ask about later (in process: real/realReplies; on a
// llama-server: e2e/server): a name or a place a model either says or does not.
export const RECALL_FACTS: ReadonlyArray<{ fact: string; question: string; answer: string }> = [
  { fact: 'My cat is called Biscuit.', question: 'What is my cat called?', answer: 'biscuit' },
  { fact: 'My sister is called Priya.', question: "What is my sister's name?", answer: 'priya' },
  { fact: 'I live in Lisbon.', question: 'Which city do I live in?', answer: 'lisbon' },
  { fact: 'My favourite colour is teal.', question: 'What is my favourite colour?', answer: 'teal' },
  { fact: 'My dog is named Rocket.', question: "What is my dog's name?", answer: 'rocket' },
  { fact: 'I work as a baker.', question: 'What is my job?', answer: 'baker' },
  { fact: 'My best friend is Tomasz.', question: "What is my best friend's name?", answer: 'tomasz' },
  { fact: 'My car is a red Volvo.', question: 'What car do I drive?', answer: 'volvo' },
  { fact: 'My brother is called Mateo.', question: "What is my brother's name?", answer: 'mateo' },
  { fact: 'I was born in Nairobi.', question: 'Where was I born?', answer: 'nairobi' },
  { fact: 'My favourite food is ramen.', question: 'What is my favourite food?', answer: 'ramen' },
  { fact: 'My parrot is called Kiwi.', question: "What is my parrot's name?", answer: 'kiwi' },
];

/** Whether a reply says the answer. */
export const recalls = (reply: string, answer: string): boolean => reply.toLowerCase().includes(answer);
