/**
 * Turning a record into the text to tokenize: one field by dotted path (`--field meta.text`), a template over
 * several fields (`--template 'Question: {question}\n\nAnswer:{@train} {answer}'`, or `--template-file FILE`) for QA
 * and instruction data, or a conversation rendered with a chat template (`--chat-template`). The last two can also
 * say which part of the text is trained on (a loss mask: loss-mask.ts).
 */
import { ChatTemplateError, checkMessages, type ChatTemplate, type Spans } from './chat-template.js';

/**
 * The text, as a string or (a Parquet string value, passed to the tokenizer as it is) as UTF-8 bytes; with `spans`,
 * the UTF-16 ranges of the text that are trained on (loss-mask.ts).
 */
export type FormattedText = ({ text: string | Uint8Array; spans?: undefined } | { text: string; spans: Spans }) & { specialText?: boolean };
export type FormatResult = FormattedText
  | { error: 'missing-field' | 'non-string-field'; field: string }
  | { error: 'bad-conversation'; field: string; message: string };

/** What a failed format() says about the record, after its location (the run's error for a bad record). */
export function formatFailure(failure: Exclude<FormatResult, FormattedText>): string {
  return failure.error === 'missing-field' ? `no field "${failure.field}"`
    : failure.error === 'bad-conversation' ? `field "${failure.field}": ${failure.message}` : `field "${failure.field}" is not a string`;
}

/** The marker in a --template after which the text is the answer: trained on with --train-on assistant. */
export const TRAIN_MARKER = '{@train}';

// Parquet string values arrive as UTF-8 bytes; a template joins them as text. A leading U+FEFF is content: kept.
const utf8 = new TextDecoder('utf-8', { ignoreBOM: true });

/** A field by dotted path, own properties only: `constructor` or `toString` is a field only when the record has it. */
function lookup(value: unknown, path: string): unknown {
  let current = value;
  for (const key of path.split('.')) {
    // A string, or a Parquet string's bytes, has no fields (its bytes are not `.0`, `.1`, ...).
    if (current === null || typeof current !== 'object' || current instanceof Uint8Array || !Object.hasOwn(current, key)) return undefined;
    current = (current as Record<string, unknown>)[key];
  }
  return current;
}

export interface RecordFormatter {
  /** The top-level fields the formatter reads (Parquet decodes only these columns). */
  readonly columns: string[];
  /** Whether format() gives trained spans (a chat template, or a template with a {@train} marker). */
  readonly spans: boolean;
  format(value: unknown): FormatResult;
}

/**
 * Expands the two escapes a template given on the command line may hold: `\n` is a newline and `\\` one
 * backslash. Every other backslash is literal, so LaTeX survives as written (`$\theta \neq 0$`, `\frac{a}{b}`,
 * `\textbf`), whereas a `\t` escape would have turned `\theta` into a tab and "heta".
 */
export function expandTemplateEscapes(template: string): string {
  return template.replace(/\\(\\|n)/g, (_, escaped: string) => (escaped === 'n' ? '\n' : '\\'));
}

/**
 * `{name}` or `{a.b}` placeholders (a dotted path: `{messages.0.content}` is the first message's content);
 * `{{` and `}}` are literal braces; one `{@train}` marks where the answer begins (the trained span runs from there to
 * the end of the text). The template is used as given: expandTemplateEscapes is the caller's step for
 * a template typed on a command line (a template read from a file is taken verbatim).
 */
export function templateFormatter(template: string): RecordFormatter {
  const parts: ({ literal: string } | { field: string } | { train: true })[] = [];
  const expanded = template;
  const pattern = /\{\{|\}\}|\{@train\}|\{([A-Za-z_][\w.-]*)\}/g;
  let last = 0;
  for (const match of expanded.matchAll(pattern)) {
    if (match.index! > last) parts.push({ literal: expanded.slice(last, match.index) });
    if (match[0] === '{{') parts.push({ literal: '{' });
    else if (match[0] === '}}') parts.push({ literal: '}' });
    else if (match[0] === TRAIN_MARKER) parts.push({ train: true });
    else parts.push({ field: match[1] });
    last = match.index! + match[0].length;
  }
  const markers = parts.filter((part) => 'train' in part).length;
  if (markers > 1) throw new RangeError(`--template may hold one ${TRAIN_MARKER} marker (the answer starts there), received ${markers}`);
  if (last < expanded.length) parts.push({ literal: expanded.slice(last) });
  const fields = parts.filter((part): part is { field: string } => 'field' in part).map((part) => part.field);
  if (fields.length === 0) throw new RangeError(`--template must name at least one {field}, received ${JSON.stringify(template)}`);
  return {
    columns: [...new Set(fields.map((field) => field.split('.')[0]))],
    spans: markers === 1,
    format(value) {
      let text = '';
      let trainFrom = -1;
      for (const part of parts) {
        if ('literal' in part) {
          text += part.literal;
          continue;
        }
        if ('train' in part) {
          trainFrom = text.length;
          continue;
        }
        const field = lookup(value, part.field);
        if (field === undefined || field === null) return { error: 'missing-field', field: part.field };
        if (field instanceof Uint8Array) text += utf8.decode(field);
        else if (typeof field !== 'string' && typeof field !== 'number') return { error: 'non-string-field', field: part.field };
        else text += String(field);
      }
      return trainFrom < 0 ? { text } : { text, spans: [[trainFrom, text.length]] };
    },
  };
}

/** A Parquet row's strings arrive as UTF-8 bytes; a conversation is checked and rendered as text. */
function decodeStrings(value: unknown): unknown {
  if (value instanceof Uint8Array) return utf8.decode(value);
  if (Array.isArray(value)) return value.map(decodeStrings);
  if (value !== null && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, decodeStrings(item)]));
  return value;
}

/**
 * A conversation at `messagesPath` rendered with a chat template; with `spans`, the assistant turns are the trained
 * spans (chat-template.ts). A record whose messages are malformed, or that the template refuses or cannot place the
 * turns of, is a bad record (`bad-conversation`), counted or fatal as --skip-bad-records says. `specialText` says
 * whether a message spelled one of `specialTokenTexts` (the template's own markup does not count).
 */
export function chatFormatter(chat: ChatTemplate, messagesPath: string, spans: boolean, specialTokenTexts: readonly string[]): RecordFormatter {
  // The rendered text is full of special tokens by design; what is worth counting is a message that spells one.
  const special = specialTokenTexts.length === 0 ? undefined
    : new RegExp([...specialTokenTexts].sort((a, b) => b.length - a.length).map((token) => token.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|'));
  if (!/^[^.]+(\.[^.]+)*$/.test(messagesPath)) throw new RangeError(`--messages-field must be a dotted path like messages or data.conversation, received ${JSON.stringify(messagesPath)}`);
  return {
    columns: [messagesPath.split('.')[0]],
    spans,
    format(value) {
      const field = lookup(value, messagesPath);
      if (field === undefined || field === null) return { error: 'missing-field', field: messagesPath };
      const checked = checkMessages(decodeStrings(field));
      if ('error' in checked) return { error: 'bad-conversation', field: messagesPath, message: checked.error };
      const specialText = special !== undefined && checked.messages.some((message) => special.test(message.content));
      try {
        return { ...(spans ? chat.renderWithAssistantSpans(checked.messages) : { text: chat.render(checked.messages) }), specialText };
      } catch (error) {
        if (error instanceof ChatTemplateError) return { error: 'bad-conversation', field: messagesPath, message: error.message };
        throw error;
      }
    },
  };
}

export function fieldFormatter(path: string): RecordFormatter {
  if (!/^[^.]+(\.[^.]+)*$/.test(path)) throw new RangeError(`--field must be a dotted path like text or meta.body, received ${JSON.stringify(path)}`);
  return {
    columns: [path.split('.')[0]],
    spans: false,
    format(value) {
      if (typeof value === 'string') return { text: value };  // plain text files
      const field = lookup(value, path);
      if (field === undefined || field === null) return { error: 'missing-field', field: path };
      if (typeof field !== 'string' && !(field instanceof Uint8Array)) return { error: 'non-string-field', field: path };
      return { text: field };
    },
  };
}
