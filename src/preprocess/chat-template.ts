/**
 * Chat messages to text with a tokenizer's own Jinja chat template (tokenizer_config.json's `chat_template`, or a
 * file), rendered by @huggingface/jinja with the variables transformers' `apply_chat_template` passes: `messages`,
 * `add_generation_prompt` (false: a training example is a whole conversation), the special tokens (`bos_token`,
 * `eos_token`, `unk_token`, `pad_token` as strings) and `raise_exception`. One deliberate difference: transformers
 * gives templates `strftime_now`, the day's date, so a Llama-3.x conversation renders differently each day; a corpus
 * must not depend on the day it was tokenized, so here `strftime_now` exists only with a fixed `date`, and otherwise
 * the template's own fallback applies (Llama-3.x: "26 Jul 2024"). Where @huggingface/jinja's string handling differs
 * from Python's (strip with an argument, the trim filter), the template is made to use Python's (usePythonStrip).
 *
 * For loss masks, `render` also finds each assistant turn in the text: it starts where the generation prompt ends
 * (the conversation before the turn, rendered with `add_generation_prompt`, must be a prefix of the whole) and ends
 * after the last character that depends on the turn's content (found by rendering the conversation again with that
 * content replaced by a placeholder: the text that differs is the content's), plus a special token that follows at
 * once (the end-of-turn token: `<|eot_id|>`, `<|im_end|>`): what the model generates after the prompt, including the
 * token that ends its turn.
 */
import { Environment, Interpreter, Template } from '@huggingface/jinja';

export interface ChatMessage {
  role: string;
  content: string;
  [key: string]: unknown;
}

export interface ChatTemplateContext {
  /** The special tokens' text: bos_token, eos_token, unk_token, pad_token (those the config names). */
  specialTokens: Record<string, string>;
  /** YYYY-MM-DD: what `strftime_now` formats (undefined: the template sees no `strftime_now`). */
  date?: string;
  /**
   * The tokenizer's special tokens' text: one the template writes right after an assistant turn's content (its
   * end-of-turn token: `<|eot_id|>`, `<|im_end|>`) belongs to the turn.
   */
  specialTokenTexts?: readonly string[];
}

/** Half-open UTF-16 ranges [start, end) of `text`. */
export type Spans = [number, number][];

export class ChatTemplateError extends Error {}

const MONTHS = ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August', 'September', 'October', 'November', 'December'];

/** Python's strftime in the C locale, for the directives chat templates use, at midnight of `date` (YYYY-MM-DD). */
function strftime(date: string, format: string): string {
  const [year, month, day] = date.split('-').map(Number);
  const pad = (n: number) => String(n).padStart(2, '0');
  return format.replace(/%[YmdbBHMSy%]/g, (directive) => {
    switch (directive) {
      case '%Y': return String(year);
      case '%y': return pad(year % 100);
      case '%m': return pad(month);
      case '%d': return pad(day);
      case '%b': return MONTHS[month - 1].slice(0, 3);
      case '%B': return MONTHS[month - 1];
      case '%H': case '%M': case '%S': return '00';
      default: return '%';
    }
  });
}

/** Python's range(), as @huggingface/jinja's own global. */
function range(start: number, stop?: number, step = 1): number[] {
  if (stop === undefined) [start, stop] = [0, start];
  if (step === 0) throw new Error('range() step must not be zero');
  const values: number[] = [];
  for (let i = start; step > 0 ? i < stop : i > stop; i += step) values.push(i);
  return values;
}

// Python's str.isspace() characters: what str.strip() and Jinja's trim filter remove. (JavaScript's trim() also
// removes U+FEFF and keeps U+001C-U+001F and U+0085.)
const PYTHON_SPACE = '\t\n\v\f\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000';

/** Python's str.strip / lstrip / rstrip: `chars` (a set of characters) or whitespace when null or undefined. */
function pythonStrip(side: 'both' | 'left' | 'right') {
  return (value: unknown, chars?: unknown): string => {
    if (typeof value !== 'string') throw new ChatTemplateError(`the chat template calls ${side === 'both' ? 'strip' : side === 'left' ? 'lstrip' : 'rstrip'} on a ${value === null ? 'none' : typeof value}, not a string`);
    const set = chars === undefined || chars === null ? PYTHON_SPACE : String(chars);
    const strip = [...set];
    const characters = [...value];  // by code point, as Python strips
    let start = 0;
    let end = characters.length;
    if (side !== 'right') while (start < end && strip.includes(characters[start])) start++;
    if (side !== 'left') while (end > start && strip.includes(characters[end - 1])) end--;
    return characters.slice(start, end).join('');
  };
}

const STRIPS: Record<string, string> = { strip: '__octomix_strip', lstrip: '__octomix_lstrip', rstrip: '__octomix_rstrip' };
const stripFunctions = { __octomix_strip: pythonStrip('both'), __octomix_lstrip: pythonStrip('left'), __octomix_rstrip: pythonStrip('right') };

type Node = { type?: string; [field: string]: unknown };

/**
 * @huggingface/jinja's string strip, lstrip and rstrip ignore their argument (Qwen3's `content.lstrip('\n')` strips
 * spaces too) and its trim filter uses JavaScript's whitespace: both differ from the Python Jinja transformers
 * renders with. The parsed template is rewritten in place so that `x.strip(c)`, `x.lstrip(c)`, `x.rstrip(c)` and
 * `x | trim` call pythonStrip instead (the interpreter dispatches on each node's `type`).
 */
function usePythonStrip(node: unknown, seen = new Set<unknown>()): void {
  if (node === null || typeof node !== 'object' || seen.has(node)) return;
  seen.add(node);
  const expression = node as Node;
  if (expression.type === 'CallExpression') {
    const callee = expression.callee as Node;
    const property = callee?.property as Node | undefined;
    if (callee?.type === 'MemberExpression' && !callee.computed && property?.type === 'Identifier' && typeof property.value === 'string' && STRIPS[property.value]) {
      const object = callee.object;
      property.value = STRIPS[property.value];
      expression.callee = property;
      expression.args = [object, ...(expression.args as unknown[])];
    }
  } else if (expression.type === 'FilterExpression') {
    const filter = expression.filter as Node;
    if (filter.type === 'Identifier' && filter.value === 'trim') {
      filter.value = '__octomix_strip';
      expression.type = 'CallExpression';
      expression.callee = filter;
      expression.args = [expression.operand];
    } else if (filter.type === 'CallExpression' && (filter.callee as Node).type === 'Identifier' && (filter.callee as Node).value === 'trim') {
      (filter.callee as Node).value = '__octomix_strip';
      expression.type = 'CallExpression';
      expression.callee = filter.callee;
      expression.args = [expression.operand, ...(filter.args as unknown[])];
    }
  }
  for (const value of Object.values(expression)) {
    if (Array.isArray(value)) value.forEach((item) => usePythonStrip(item, seen));
    else if (value !== null && typeof value === 'object') usePythonStrip(value, seen);
  }
}

/** A placeholder no real message holds: private-use characters around a fixed word. */
const PLACEHOLDER = '\u{F0000}octomix-assistant-turn\u{F0001}';

export class ChatTemplate {
  readonly #template: Template;
  readonly #context: ChatTemplateContext;
  readonly #enders: string[];

  /** @throws {ChatTemplateError} the template does not parse */
  constructor(source: string, context: ChatTemplateContext) {
    if (context.date !== undefined && !/^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])$/.test(context.date)) {
      throw new ChatTemplateError(`the date must be YYYY-MM-DD, received ${JSON.stringify(context.date)}`);
    }
    try {
      this.#template = new Template(source);
      usePythonStrip(this.#template.parsed);
    } catch (error) {
      throw new ChatTemplateError(`the chat template does not parse: ${(error as Error).message}`);
    }
    this.#context = context;
    this.#enders = [...(context.specialTokenTexts ?? [])].filter((token) => token.length > 0).sort((a, b) => b.length - a.length);
  }

  /** The conversation as the template renders it (add_generation_prompt as given). */
  render(messages: readonly ChatMessage[], addGenerationPrompt = false): string {
    const { date, specialTokens } = this.#context;
    // Template.render declares @huggingface/jinja's globals first, its strftime_now (the day's date) among them, and
    // a variable cannot be declared twice; so the environment is built here with the same globals, strftime_now
    // only for a fixed date, and raise_exception saying it was the template that refused.
    const variables: Record<string, unknown> = {
      false: false, true: true, none: null, False: false, True: true, None: null, range,
      raise_exception: (message: string) => {
        throw new ChatTemplateError(`the chat template refused the conversation: ${message}`);
      },
      ...(date === undefined ? {} : { strftime_now: (format: string) => strftime(date, format) }),
      ...stripFunctions,
      ...specialTokens,
      messages,
      add_generation_prompt: addGenerationPrompt,
    };
    try {
      const environment = new Environment();
      for (const [name, value] of Object.entries(variables)) environment.set(name, value);
      return new Interpreter(environment).run(this.#template.parsed).value as string;
    } catch (error) {
      if (error instanceof ChatTemplateError) throw error;
      throw new ChatTemplateError(`the chat template failed on this conversation: ${(error as Error).message}`);
    }
  }

  /**
   * The whole conversation's text and, in it, each assistant turn's span (module comment).
   * @throws {ChatTemplateError} a message that is not {role: string, content: string}, or a template whose
   *   renderings of the conversation's beginnings are not prefixes of the whole (the turns cannot be located)
   */
  renderWithAssistantSpans(messages: readonly ChatMessage[]): { text: string; spans: Spans } {
    const text = this.render(messages);
    const spans: Spans = [];
    for (let i = 0; i < messages.length; i++) {
      if (messages[i].role !== 'assistant') continue;
      const prompt = this.render(messages.slice(0, i), true);
      if (!text.startsWith(prompt)) {
        throw new ChatTemplateError(`cannot locate assistant message ${i}: the template renders the conversation before it, with the generation prompt, as text that does not begin the whole conversation`);
      }
      const replaced = this.render(messages.map((message, j) => (j === i ? { ...message, content: PLACEHOLDER } : message)));
      let suffix = 0;
      const limit = Math.min(text.length, replaced.length) - prompt.length;
      while (suffix < limit && text.charCodeAt(text.length - 1 - suffix) === replaced.charCodeAt(replaced.length - 1 - suffix)) suffix++;
      let end = text.length - suffix;
      // Compared by UTF-16 unit, the match can run into the content's last character when it shares the
      // placeholder's low surrogate (U+11401 ends in DC01, as U+F0001 does): never end inside a character.
      const isHigh = (unit: number) => unit >= 0xd800 && unit <= 0xdbff;
      const isLow = (unit: number) => unit >= 0xdc00 && unit <= 0xdfff;
      if (end > 0 && end < text.length && isHigh(text.charCodeAt(end - 1)) && isLow(text.charCodeAt(end))) end++;
      // An empty answer differs from the placeholder nowhere after the prompt: the turn is its closing markup alone.
      if (end < prompt.length) end = prompt.length;
      const ender = this.#enders.find((token) => text.startsWith(token, end));
      if (ender) end += ender.length;
      const previous = spans[spans.length - 1];
      if (previous && prompt.length < previous[1]) {
        throw new ChatTemplateError(`cannot locate assistant message ${i}: its text overlaps the assistant message before it`);
      }
      spans.push([prompt.length, end]);
    }
    return { text, spans };
  }
}

/** `messages` checked as a conversation: a non-empty list of {role, content} with string role and content. */
export function checkMessages(value: unknown): { messages: ChatMessage[] } | { error: string } {
  if (!Array.isArray(value) || value.length === 0) return { error: `must be a non-empty list of messages, received ${value === null ? 'null' : Array.isArray(value) ? 'an empty list' : typeof value}` };
  for (let i = 0; i < value.length; i++) {
    const message = value[i] as Record<string, unknown> | null;
    if (message === null || typeof message !== 'object' || Array.isArray(message)) return { error: `message ${i} is not an object` };
    if (typeof message.role !== 'string') return { error: `message ${i} has no string "role"` };
    if (typeof message.content !== 'string') return { error: `message ${i} has no string "content" (lists of content parts are not supported)` };
  }
  return { messages: value as ChatMessage[] };
}
