/**
 * CSV injection (OWASP "CSV Injection"): a text cell beginning with = + - @ TAB or CR is written with a leading
 * apostrophe and quoted, so a spreadsheet shows it as text; numbers stay numbers; csvText undoes the escape exactly.
 * Checked against Python's csv module as an independent reader.
 */
import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { csvCell, csvText, parseCsv, toCsv } from '../../../app/lib/util/csv';
import { toLabeledDatasetCsv } from '../../../app/lib/batch/csv';
import { hasPython, PYTHON } from '../helpers/shared';

const hostile = ['=HYPERLINK("http://x","y").png', '+1+1.png', '-2+3.png', '@SUM(A1).png', '\tcmd.png', '\rcmd.png', "'=already.png", 'plain.png', "it's.png"];

describe('CSV injection neutralisation', () => {
  it('every formula-starting text cell gets an apostrophe and quotes; others are untouched', () => {
    for (const s of hostile) {
      const cell = csvCell(s);
      const unquoted = cell.startsWith('"') ? cell.slice(1, -1).replace(/""/g, '"') : cell;
      if (/^[=+\-@\t\r']/.test(s)) {
        expect(cell.startsWith('"\'')).toBe(true);
        expect(unquoted).toBe(`'${s}`);
      } else expect(unquoted).toBe(s);
      expect(csvText(unquoted)).toBe(s);
    }
    expect(csvCell(-0.25)).toBe('-0.25');
    expect(csvCell(NaN)).toBe('');
    expect(csvCell(true)).toBe('true');
  });

  it('labeled_dataset.csv: no cell read back begins with a formula character', () => {
    const rows = hostile.map((image_id, i) => ({ image_id, auto_label: '=1+1', ground_truth: '@x', confidence_score: -i, classifier_prediction: 'NORMAL', classifier_probability: 0.5, zero_shot: { '-neg': 0.3 } }));
    const csv = toLabeledDatasetCsv(rows, ['-neg']);
    const back = parseCsv(csv);
    expect(back[0].at(-1)).toBe('zs_-neg'); // header: the zs_ prefix keeps it safe
    for (const r of back.slice(1)) {
      for (const [j, c] of r.entries()) if (j !== 3) expect(c).not.toMatch(/^[=+\-@\t\r]/);
    }
    expect(back.slice(1).map((r) => csvText(r[0]))).toEqual(hostile);
    expect(back[2][3]).toBe('-1'); // a number is not escaped
  });

  it.skipIf(!hasPython)("Python's csv module reads the same cells", () => {
    const csv = toCsv(hostile.map((h) => [h, 1.5]));
    const py = JSON.parse(execFileSync(PYTHON, ['-c', 'import csv,io,json,sys; print(json.dumps(list(csv.reader(io.StringIO(sys.stdin.read(), newline="")))))'], { input: csv }).toString());
    expect(py).toEqual(parseCsv(csv));
    for (const row of py as string[][]) expect(row[0]).not.toMatch(/^[=+\-@\t\r]/);
  });
});
