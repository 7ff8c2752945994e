/**
 * PyTorch's CPU random stream, so that a seed here gives the same initial latents and per-step noise as diffusers
 * with `generator=torch.Generator("cpu").manual_seed(seed)`.
 *
 * Source: PyTorch ATen — CPUGeneratorImpl (a 32-bit MT19937, seeded with the standard init_genrand recurrence),
 * `at::uniform_real_distribution<float>` (24 random bits × 2^-24) and `normal_fill` in
 * aten/src/ATen/native/cpu/DistributionTemplates.h: for a float tensor of n >= 16 elements, fill all n with uniforms,
 * then Box–Muller in blocks of 16 (u1 = 1 - data[j], u2 = data[j + 8], j < 8; radius = sqrt(-2 ln u1),
 * theta = 2π u2, data[j] = r cos θ, data[j + 8] = r sin θ); when n % 16 != 0 the last 16 values are drawn again and
 * transformed once more. PyTorch computes the transform in float32 (SIMD log/sincos on AVX2 machines), this in
 * float64 rounded to float32: values agree to ~1e-6, not bit for bit (tested against torch.randn in
 * tests/unit/sd/torch-random.test.ts).
 */

const N = 624;
const M = 397;

/** MT19937 (Matsumoto & Nishimura 1998), 32-bit output, as std::mt19937 and at::mt19937. */
export class Mt19937 {
  private readonly mt = new Uint32Array(N);
  private mti = N;

  constructor(seed: number | bigint) {
    // at::mt19937 takes a uint64 seed and keeps its low 32 bits (init_with_uint32).
    const s = Number(BigInt.asUintN(32, BigInt(seed)));
    this.mt[0] = s >>> 0;
    for (let i = 1; i < N; i++) {
      const prev = this.mt[i - 1] ^ (this.mt[i - 1] >>> 30);
      // 1812433253 * prev + i in uint32 without losing bits: split the multiplication
      this.mt[i] = (((((prev & 0xffff0000) >>> 16) * 1812433253) << 16) + (prev & 0x0000ffff) * 1812433253 + i) >>> 0;
    }
  }

  /** Next 32-bit unsigned integer. */
  nextUint32(): number {
    const mt = this.mt;
    if (this.mti >= N) {
      for (let k = 0; k < N; k++) {
        const y = (mt[k] & 0x80000000) | (mt[(k + 1) % N] & 0x7fffffff);
        mt[k] = mt[(k + M) % N] ^ (y >>> 1) ^ (y & 1 ? 0x9908b0df : 0);
      }
      this.mti = 0;
    }
    let y = mt[this.mti++];
    y ^= y >>> 11;
    y ^= (y << 7) & 0x9d2c5680;
    y ^= (y << 15) & 0xefc60000;
    y ^= y >>> 18;
    return y >>> 0;
  }
}

/**
 * A stand-in for `torch.Generator("cpu").manual_seed(seed)`: successive randn() calls continue one stream, as the
 * diffusers pipeline's prepare_latents and LCMScheduler.step do with one generator.
 */
export class TorchGenerator {
  private mt: Mt19937;
  readonly initialSeed: number;

  constructor(seed: number) {
    if (!Number.isInteger(seed) || seed < 0) throw new RangeError(`seed must be a non-negative integer, got ${seed}`);
    this.initialSeed = seed;
    this.mt = new Mt19937(seed);
  }

  /** at::uniform_real_distribution<float>(0, 1): 24 random bits of one 32-bit draw, in [0, 1). */
  uniform(): number {
    return (this.mt.nextUint32() & 0xffffff) * 2 ** -24;
  }

  /**
   * torch.randn(n) from this generator: float32 standard normals in PyTorch's order. Throws for n < 16 (PyTorch
   * uses a different, scalar path there; latents always have more elements).
   */
  randn(n: number): Float32Array {
    if (!Number.isInteger(n) || n < 16) throw new RangeError(`randn: need at least 16 elements (PyTorch's vectorised path), got ${n}`);
    const data = new Float64Array(n);
    for (let i = 0; i < n; i++) data[i] = Math.fround(this.uniform());
    for (let i = 0; i + 16 <= n; i += 16) boxMuller16(data, i);
    if (n % 16 !== 0) {
      const off = n - 16;
      for (let i = 0; i < 16; i++) data[off + i] = Math.fround(this.uniform());
      boxMuller16(data, off);
    }
    return Float32Array.from(data);
  }
}

function boxMuller16(d: Float64Array, o: number): void {
  for (let j = 0; j < 8; j++) {
    const u1 = 1 - d[o + j];
    const u2 = d[o + j + 8];
    const radius = Math.sqrt(-2 * Math.log(u1));
    const theta = 2 * Math.PI * u2;
    d[o + j] = Math.fround(radius * Math.cos(theta));
    d[o + j + 8] = Math.fround(radius * Math.sin(theta));
  }
}

/** Product of a shape's dimensions. */
export function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}
