/**
 * Fuzzing harness (issue 19 item 2): mutates real files of ../shared (scripts/fuzz-mutate.ts) and feeds each to the
 * decode path the app and the CLIs share, in ONE child process at a time (scripts/fuzz-child.ts) under a V8 heap cap
 * (--max-old-space-size), an RSS watchdog (VmRSS polled every 50 ms; the child is killed over --max-rss-mb) and a
 * per-input timeout. Prints the counts: decoded, refused with a typed error, crashed (an untyped error thrown, or
 * the process died), hung, over memory; the replay command of every failure; the peak RSS of the child.
 *
 *   npm run fuzz -- [--n 1000] [--seed 1] [--start 0] [--kinds dicom,png,jpeg,zip] [--timeout-s 20]
 *                   [--max-rss-mb 1024] [--heap-mb 768] [--save DIR] [--log FILE] [--quiet]
 *
 * Input i of a run seeded S is mutation mutationSeed(S, i) of a corpus file chosen by it: replay one with
 * `--seed S --start i --n 1`. --save writes each failing input to DIR (for a regression test). Exit 1 on any crash,
 * hang or over-memory case. --log writes one line per input (index, kind, outcome, child high-water RSS in MB, message).
 */
import { fork, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { mutate, mutationSeed, rng, type Kind } from './fuzz-mutate';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const SHARED = process.env.CXR_SHARED ? path.resolve(process.env.CXR_SHARED) : path.resolve(REPO, '..', 'shared');

const argv = process.argv.slice(2);
const opt = (k: string, d: string) => {
  const i = argv.indexOf(k);
  return i >= 0 && argv[i + 1] !== undefined ? argv[i + 1] : d;
};
const N = Number(opt('--n', '1000'));
const SEED = Number(opt('--seed', '1'));
const START = Number(opt('--start', '0'));
const KINDS = opt('--kinds', 'dicom,png,jpeg,zip').split(',') as Kind[];
const TIMEOUT_MS = Number(opt('--timeout-s', '20')) * 1000;
const MAX_RSS = Number(opt('--max-rss-mb', '1024')) * 2 ** 20;
const HEAP_MB = Number(opt('--heap-mb', '768'));
const SAVE = argv.includes('--save') ? opt('--save', '') : '';
const QUIET = argv.includes('--quiet');
const LOG = argv.includes('--log') ? opt('--log', '') : '';

/** Seed files per kind: real public files and bug-report inputs of ../shared, small enough to decode quickly. */
function corpus(): Record<Kind, string[]> {
  const d = (...p: string[]) => path.join(SHARED, 'data', ...p);
  const ls = (dir: string, re: RegExp, max = 1000) => (fs.existsSync(dir) && fs.statSync(dir).isDirectory() ? fs.readdirSync(dir).filter((f) => re.test(f)).sort().slice(0, max).map((f) => path.join(dir, f)) : []);
  const sub = (dir: string, name: RegExp) => (fs.existsSync(dir) ? fs.readdirSync(dir).sort().filter((s) => fs.statSync(path.join(dir, s)).isDirectory()).flatMap((s) => ls(path.join(dir, s), name)) : []);
  const small = (files: string[], max: number) => files.filter((f) => fs.statSync(f).size <= max);
  return {
    dicom: small([...ls(d('dicom-codecs', 'files'), /./), ...ls(d('dicom'), /\.dcm$/), ...sub(d('bugreports'), /\.dcm$/), ...sub(d('adversarial', 'cases'), /\.dcm$/)], 1_000_000),
    png: [...sub(d('bugreports'), /\.png$/), ...ls(d('cxr-lung-masks', 'masks'), /\.png$/, 6), ...sub(d('adversarial', 'cases'), /\.png$/)],
    jpeg: [...sub(d('bugreports'), /\.jpe?g$/), ...ls(d('kermany-cxr-224', 'test', 'NORMAL'), /\.jpe?g$/, 4), ...ls(d('cxr-lung-masks', 'images'), /\.jpe?g$/, 4)],
    zip: [...sub(d('bugreports'), /\.zip$/), ...sub(d('adversarial', 'cases'), /\.zip$/)],
  };
}

type Result = 'decoded' | 'refused' | 'crashed' | 'hung' | 'over-memory';

class Child {
  proc!: ChildProcess;
  peak = 0;
  /** The input whose run raised `peak` last. */
  peakAt = '';
  current = '';
  private ready!: Promise<void>;
  private stderr = '';
  start(): void {
    this.stderr = '';
    this.proc = fork(path.join(REPO, 'scripts/fuzz-child.ts'), [], {
      execArgv: ['--import', 'tsx', `--max-old-space-size=${HEAP_MB}`, '--expose-gc'],
      serialization: 'advanced',
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
      cwd: REPO,
    });
    this.proc.stderr!.on('data', (c) => (this.stderr = (this.stderr + c).slice(-4000)));
    this.ready = new Promise((res) => this.proc.once('message', () => res()));
  }
  rss(): number {
    try {
      const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${this.proc.pid}/status`, 'utf8'));
      return m ? Number(m[1]) * 1024 : 0;
    } catch {
      return 0;
    }
  }
  async run(id: number, kind: Kind, bytes: Uint8Array): Promise<{ result: Result; message: string; rss: number }> {
    await this.ready;
    return new Promise((resolve) => {
      let done = false;
      const finish = (r: { result: Result; message: string; rss?: number }, restart: boolean) => {
        if (done) return;
        done = true;
        clearInterval(watch);
        clearTimeout(timer);
        this.proc.removeAllListeners('message');
        this.proc.removeAllListeners('exit');
        if (restart) {
          this.proc.kill('SIGKILL');
          this.start();
        }
        resolve({ ...r, rss: r.rss ?? this.peak });
      };
      const watch = setInterval(() => {
        const rss = this.rss();
        if (rss > this.peak) [this.peak, this.peakAt] = [rss, this.current];
        if (rss > MAX_RSS) finish({ result: 'over-memory', message: `RSS ${Math.round(rss / 2 ** 20)} MB > ${MAX_RSS / 2 ** 20} MB` }, true);
      }, 50);
      const timer = setTimeout(() => finish({ result: 'hung', message: `no answer in ${TIMEOUT_MS / 1000} s` }, true), TIMEOUT_MS);
      this.proc.on('message', (m: { id: number; outcome: string; message: string; rss: number }) => {
        if (m.id !== id) return;
        if (m.rss > this.peak) [this.peak, this.peakAt] = [m.rss, this.current];
        finish({ result: m.outcome === 'error' ? 'crashed' : (m.outcome as Result), message: m.message, rss: m.rss }, false);
      });
      this.proc.on('exit', (code, signal) => {
        const oom = /heap out of memory|Allocation failed|invalid array length|Array buffer allocation failed/i.test(this.stderr);
        finish({ result: oom ? 'over-memory' : 'crashed', message: `child exited (code ${code}, signal ${signal}): ${this.stderr.trim().split('\n').slice(-3).join(' | ')}` }, true);
      });
      this.proc.send({ id, kind, bytes });
    });
  }
}

async function main(): Promise<number> {
  const files = corpus();
  const kinds = KINDS.filter((k) => files[k]?.length);
  if (!kinds.length) throw new Error(`no seed files under ${SHARED}/data for kinds ${KINDS.join(',')}`);
  const cache = new Map<string, Uint8Array>();
  const read = (f: string) => cache.get(f) ?? (cache.set(f, new Uint8Array(fs.readFileSync(f))), cache.get(f)!);
  const counts: Record<Result, number> = { decoded: 0, refused: 0, crashed: 0, hung: 0, 'over-memory': 0 };
  const byKind: Record<string, Record<Result, number>> = {};
  const failures: string[] = [];
  const child = new Child();
  child.start();
  if (SAVE) fs.mkdirSync(SAVE, { recursive: true });
  const t0 = performance.now();
  for (let i = START; i < START + N; i++) {
    const ms = mutationSeed(SEED, i);
    const r = rng(ms);
    const kind = kinds[i % kinds.length];
    const file = files[kind][Math.floor(r() * files[kind].length)];
    const { bytes, ops } = mutate(read(file), kind, ms);
    child.current = `#${i} ${kind} ${path.relative(SHARED, file)} [${ops.join(',')}]`;
    const { result, message, rss } = await child.run(i, kind, bytes);
    counts[result]++;
    if (LOG) fs.appendFileSync(LOG, `${i}\t${kind}\t${result}\t${Math.round(rss / 2 ** 20)}\t${message.split('\n')[0].slice(0, 200)}\n`);
    (byKind[kind] ??= { decoded: 0, refused: 0, crashed: 0, hung: 0, 'over-memory': 0 })[result]++;
    if (result === 'crashed' || result === 'hung' || result === 'over-memory') {
      const line = `${result} #${i} ${kind} ${path.relative(SHARED, file)} [${ops.join(',')}]: replay: npm run fuzz -- --seed ${SEED} --start ${i} --n 1 --kinds ${KINDS.join(',')}\n    ${message.split('\n').join('\n    ')}`;
      failures.push(line);
      console.log(line);
      if (SAVE) fs.writeFileSync(path.join(SAVE, `seed${SEED}-${i}-${kind}.bin`), bytes);
    }
    if (!QUIET && (i - START + 1) % 500 === 0) {
      console.error(`[${i - START + 1}/${N}] ${JSON.stringify(counts)} peak RSS ${Math.round(child.peak / 2 ** 20)} MB, ${((performance.now() - t0) / 1000).toFixed(0)} s`);
    }
  }
  child.proc.kill('SIGKILL');
  const secs = (performance.now() - t0) / 1000;
  console.log(`fuzz: ${N} mutations (seed ${SEED}, start ${START}, kinds ${kinds.join(',')}) in ${secs.toFixed(0)} s`);
  console.log(`  decoded ${counts.decoded}, refused with a typed error ${counts.refused}, crashed ${counts.crashed}, hung ${counts.hung}, over memory ${counts['over-memory']}`);
  for (const [k, c] of Object.entries(byKind)) console.log(`  ${k}: ${JSON.stringify(c)}`);
  console.log(`  peak child RSS ${Math.round(child.peak / 2 ** 20)} MB at ${child.peakAt} (cap ${MAX_RSS / 2 ** 20} MB, V8 heap cap ${HEAP_MB} MB, timeout ${TIMEOUT_MS / 1000} s)`);
  return failures.length ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (e) => {
    console.error(`fuzz: error: ${e instanceof Error ? e.stack : String(e)}`);
    process.exit(2);
  },
);
