/**
 * Fenced code blocks of a Markdown file, with what the docs checker needs: language, flags from
 * the info string (```ts partial, ```ts run), and an optional hidden preamble given by an HTML
 * comment right before the fence (`<!-- check: declare const app: Express; -->`): declarations a
 * snippet relies on without showing them, so an excerpt is still type-checked instead of skipped.
 */

export interface CodeBlock {
  /** The Markdown file (as given). */
  file: string;
  /** 1-based line of the first code line (the line after the opening fence). */
  line: number;
  /** First word of the info string, lower-cased (`ts`, `yaml`, `sh`, ...). */
  lang: string;
  /** The other words of the info string (`partial`, `run`). */
  flags: string[];
  /** The code between the fences. */
  code: string;
  /** Text of a `<!-- check: ... -->` comment right before the fence (blank lines allowed between). */
  preamble?: string;
}

const FENCE = /^(\s*)(`{3,}|~{3,})(.*)$/;

/** Every fenced block of `text`. */
export function codeBlocks(text: string, file: string): CodeBlock[] {
  const lines = text.split('\n');
  const blocks: CodeBlock[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = FENCE.exec(lines[i] as string);
    if (!open) continue;
    const fence = open[2] as string;
    const info = (open[3] as string).trim().split(/\s+/).filter(Boolean);
    const body: string[] = [];
    let j = i + 1;
    for (; j < lines.length; j++) {
      const l = lines[j] as string;
      if (l.trim().startsWith(fence[0]!.repeat(fence.length)) && l.trim().replace(/[`~]/g, '') === '') break;
      body.push(l);
    }
    const block: CodeBlock = { file, line: i + 2, lang: (info[0] ?? '').toLowerCase(), flags: info.slice(1).map((f) => f.toLowerCase()), code: body.join('\n') };
    const preamble = preambleBefore(lines, i);
    if (preamble !== undefined) block.preamble = preamble;
    blocks.push(block);
    i = j;
  }
  return blocks;
}

/** The `<!-- check: ... -->` comment ending right above line `i` (blank lines skipped). */
function preambleBefore(lines: string[], i: number): string | undefined {
  let k = i - 1;
  while (k >= 0 && (lines[k] as string).trim() === '') k--;
  if (k < 0 || !(lines[k] as string).trim().endsWith('-->')) return undefined;
  const end = k;
  while (k >= 0 && !(lines[k] as string).includes('<!--')) k--;
  if (k < 0) return undefined;
  const text = lines.slice(k, end + 1).join('\n');
  const m = /<!--\s*check:([\s\S]*?)-->\s*$/.exec(text);
  return m ? (m[1] as string).trim() : undefined;
}
