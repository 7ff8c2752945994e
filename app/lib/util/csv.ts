/**
 * The one CSV module every writer in the app and the CLIs uses (labeled_dataset.csv, segment evaluation tables,
 * anything else exported as CSV): RFC 4180 quoting plus OWASP's CSV-injection defence, and a reader for the same
 * dialect.
 *
 * CSV injection (OWASP, "CSV Injection"): a spreadsheet opening the file runs a cell that begins with `=`, `+`, `-`,
 * `@`, TAB or CR as a formula (e.g. an image named `=HYPERLINK(...).png`). Such TEXT cells are written with a leading
 * apostrophe, which spreadsheets show as text and do not evaluate, and the cell is quoted. Numbers are written as
 * numbers (a negative score stays `-0.25`): only strings can carry a formula. A text cell that already begins with an
 * apostrophe gets one more, so `csvText` reverses the escape exactly (`'=x` and `=x` never read back the same).
 */

/** First characters a spreadsheet treats as the start of a formula (OWASP), plus the escape's own apostrophe. */
const FORMULA_START = /^[=+\-@\t\r']/;

/**
 * A text cell made safe to open in a spreadsheet: prefixed with `'` when it begins with = + - @ TAB CR (or `'`).
 * Inverse: csvText.
 */
export function neutraliseFormula(s: string): string {
  return FORMULA_START.test(s) ? `'${s}` : s;
}

/** A cell as written by csvCell back to the original text (one escaping apostrophe removed). */
export function csvText(cell: string): string {
  return cell.length > 1 && cell[0] === "'" && FORMULA_START.test(cell.slice(1)) ? cell.slice(1) : cell;
}

/** A number as a CSV cell: 6 decimals at most, '' for NaN and ±Infinity. */
function formatNumber(x: number): string {
  if (!Number.isFinite(x)) return '';
  return String(Math.round(x * 1e6) / 1e6);
}

/**
 * One CSV cell: null/undefined -> '', numbers with formatNumber, booleans as true/false, text neutralised
 * (neutraliseFormula) and quoted when it contains a comma, a double quote, CR or LF, or was neutralised.
 */
export function csvCell(v: unknown): string {
  if (v === null || v === undefined) return '';
  if (typeof v === 'number') return formatNumber(v);
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  const raw = String(v);
  const s = neutraliseFormula(raw);
  return s !== raw || /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** One row of cells -> one CSV line, without its line ending. */
export function csvLine(cells: unknown[]): string {
  return cells.map(csvCell).join(',');
}

/** Rows of cells -> CSV text, CRLF line endings (RFC 4180), trailing CRLF. */
export function toCsv(rows: unknown[][]): string {
  return rows.map(csvLine).join('\r\n') + '\r\n';
}

/**
 * Parse RFC 4180 CSV (quoted fields, doubled quotes, CRLF or LF, BOM tolerated). Blank lines are dropped. Cells are
 * returned as written: apply csvText to undo the formula escape of a file this module wrote.
 */
export function parseCsv(text: string): string[][] {
  const s = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let inQuotes = false;
  let i = 0;
  const endRow = () => {
    row.push(field);
    field = '';
    if (!(row.length === 1 && row[0] === '')) rows.push(row);
    row = [];
  };
  while (i < s.length) {
    const c = s[i];
    if (inQuotes) {
      if (c === '"') {
        if (s[i + 1] === '"') {
          field += '"';
          i += 2;
          continue;
        }
        inQuotes = false;
        i++;
        continue;
      }
      field += c;
      i++;
      continue;
    }
    if (c === '"' && field === '') {
      inQuotes = true;
      i++;
    } else if (c === ',') {
      row.push(field);
      field = '';
      i++;
    } else if (c === '\r' || c === '\n') {
      endRow();
      i += c === '\r' && s[i + 1] === '\n' ? 2 : 1;
    } else {
      field += c;
      i++;
    }
  }
  if (field !== '' || row.length > 0) endRow();
  return rows;
}
