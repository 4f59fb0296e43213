/**
 * Turning a record into the text to tokenize: one field by dotted path (`--field meta.text`), or a template over
 * several fields (`--template 'Question: {question}\n\nAnswer: {answer}'`, or `--template-file FILE`) for QA and
 * instruction data.
 */

/** The text, as a string or (a Parquet string value, passed to the tokenizer as it is) as UTF-8 bytes. */
export type FormatResult = { text: string | Uint8Array } | { error: 'missing-field' | 'non-string-field'; field: string };

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
 * `{{` and `}}` are literal braces. The template is used as given: expandTemplateEscapes is the caller's step for
 * a template typed on a command line (a template read from a file is taken verbatim).
 */
export function templateFormatter(template: string): RecordFormatter {
  const parts: ({ literal: string } | { field: string })[] = [];
  const expanded = template;
  const pattern = /\{\{|\}\}|\{([A-Za-z_][\w.-]*)\}/g;
  let last = 0;
  for (const match of expanded.matchAll(pattern)) {
    if (match.index! > last) parts.push({ literal: expanded.slice(last, match.index) });
    if (match[0] === '{{') parts.push({ literal: '{' });
    else if (match[0] === '}}') parts.push({ literal: '}' });
    else parts.push({ field: match[1] });
    last = match.index! + match[0].length;
  }
  if (last < expanded.length) parts.push({ literal: expanded.slice(last) });
  const fields = parts.filter((part): part is { field: string } => 'field' in part).map((part) => part.field);
  if (fields.length === 0) throw new RangeError(`--template must name at least one {field}, received ${JSON.stringify(template)}`);
  return {
    columns: [...new Set(fields.map((field) => field.split('.')[0]))],
    format(value) {
      let text = '';
      for (const part of parts) {
        if ('literal' in part) {
          text += part.literal;
          continue;
        }
        const field = lookup(value, part.field);
        if (field === undefined || field === null) return { error: 'missing-field', field: part.field };
        if (field instanceof Uint8Array) text += utf8.decode(field);
        else if (typeof field !== 'string' && typeof field !== 'number') return { error: 'non-string-field', field: part.field };
        else text += String(field);
      }
      return { text };
    },
  };
}

export function fieldFormatter(path: string): RecordFormatter {
  if (!/^[^.]+(\.[^.]+)*$/.test(path)) throw new RangeError(`--field must be a dotted path like text or meta.body, received ${JSON.stringify(path)}`);
  return {
    columns: [path.split('.')[0]],
    format(value) {
      if (typeof value === 'string') return { text: value };  // plain text files
      const field = lookup(value, path);
      if (field === undefined || field === null) return { error: 'missing-field', field: path };
      if (typeof field !== 'string' && !(field instanceof Uint8Array)) return { error: 'non-string-field', field: path };
      return { text: field };
    },
  };
}
