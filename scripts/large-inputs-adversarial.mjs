/**
 * `node scripts/large-inputs.mjs --adversarial [--repo DIR] [--only 01,03] [--timeout-s 300]`: the cases of
 * ../shared/data/adversarial (issue 19) through the CLIs exactly as their expected/<id>.json `runs` say
 * (`npm run convert` / `npm run label`, each in a fresh temp folder as --out), measuring wall time and peak RSS
 * (GNU time's %M: the largest process's high-water mark) and keeping the lines that say what happened (refusals,
 * skips, rows written, exit status). --repo measures another checkout (e.g. a worktree at 9d53b90, for "before").
 * Prints one JSON object per run, then a Markdown table.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const args = process.argv.slice(2);
const opt = (k, d) => {
  const i = args.indexOf(k);
  return i >= 0 ? args[i + 1] : d;
};
const HERE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const REPO = path.resolve(opt('--repo', HERE));
const SHARED = process.env.CXR_SHARED ? path.resolve(process.env.CXR_SHARED) : path.resolve(HERE, '..', 'shared');
const ADV = path.join(SHARED, 'data', 'adversarial');
const ONLY = opt('--only', '');
const TIMEOUT = Number(opt('--timeout-s', 300));

const KEEP = /refus|skip|wrote|converted|error|invalid|heap|abort|frames|inflat|palette|->|renamed|unsafe/i;

function runOne(id, run) {
  const caseDir = path.join(ADV, 'cases', id);
  const out = fs.mkdtempSync(path.join(os.tmpdir(), `adv-${id}-`));
  const cli = path.join(REPO, 'app', 'cli', `${run.cli}.ts`);
  const outArgs = run.cli === 'label' ? ['--out', path.join(out, 'labeled_dataset.csv')] : ['--out', out];
  const cmd = ['-f', '%e %M', path.join(REPO, 'node_modules', '.bin', 'tsx'), cli, ...run.args, ...outArgs];
  const r = spawnSync('/usr/bin/time', cmd, { cwd: caseDir, encoding: 'utf8', timeout: TIMEOUT * 1000, maxBuffer: 64 * 2 ** 20, env: { ...process.env, NODE_OPTIONS: '' } });
  const lines = `${r.stdout ?? ''}\n${r.stderr ?? ''}`.split('\n');
  const timeLine = lines.filter((l) => /^\d+(\.\d+)? \d+$/.test(l.trim())).pop();
  const [wall, kb] = timeLine ? timeLine.trim().split(' ').map(Number) : [NaN, NaN];
  const said = lines.filter((l) => KEEP.test(l) && !/^\{/.test(l) && l.length < 600).map((l) => l.trim()).slice(0, 12);
  let rows = null;
  const csv = path.join(out, 'labeled_dataset.csv');
  if (fs.existsSync(csv)) rows = fs.readFileSync(csv, 'utf8').trim().split('\n').length - 1;
  const written = fs.readdirSync(out).filter((f) => !f.endsWith('.csv') && !f.endsWith('.json')).length;
  fs.rmSync(out, { recursive: true, force: true });
  return {
    id,
    run: `${run.cli} ${run.args.join(' ')}`,
    wall_s: wall,
    peak_rss_mb: Math.round(kb / 1024),
    // GNU time reports the command's status ("exited with non-zero status 133": V8's fatal abort; 134: heap OOM)
    exit: r.signal ? `signal ${r.signal}` : r.error ? String(r.error.message) : Number((r.stderr ?? '').match(/Command exited with non-zero status (\d+)/)?.[1] ?? (r.stderr ?? '').match(/Command terminated by signal (\d+)/)?.[1] ?? r.status),
    csv_rows: rows,
    files_written: run.cli === 'convert' ? written : undefined,
    said,
  };
}

const results = [];
for (const f of fs.readdirSync(path.join(ADV, 'expected')).filter((n) => n.endsWith('.json')).sort()) {
  const exp = JSON.parse(fs.readFileSync(path.join(ADV, 'expected', f), 'utf8'));
  if (ONLY && !ONLY.split(',').some((o) => exp.id.startsWith(o))) continue;
  for (const run of exp.runs) {
    const res = { ...runOne(exp.id, run), budget: `${exp.max_rss_mb} MB / ${exp.max_wall_s} s` };
    if (exp.must_not_exist) res.escaped = exp.must_not_exist.filter((p) => fs.existsSync(p));
    console.log(JSON.stringify(res));
    results.push(res);
  }
}
console.log('\n| case | run | peak RSS | wall | budget | outcome |\n| --- | --- | --- | --- | --- | --- |');
for (const r of results) {
  const outcome = [r.exit === 0 ? 'exit 0' : `exit ${r.exit}`, r.csv_rows != null ? `${r.csv_rows} CSV rows` : '', r.files_written != null ? `${r.files_written} files written` : '', r.said.slice(0, 3).join('; ').slice(0, 300)].filter(Boolean).join(', ');
  console.log(`| ${r.id} | ${r.run} | ${r.peak_rss_mb} MB | ${r.wall_s} s | ${r.budget} | ${outcome.replace(/\|/g, '\\|')} |`);
}
