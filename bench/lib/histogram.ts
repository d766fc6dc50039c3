/**
 * A latency histogram with logarithmic buckets 1 % wide, from 1 µs to ~1000 s. It is small (≈ 2,100
 * counters), can be sent between processes as a plain array and merged by adding, so the percentiles of
 * several load processes are computed over all their samples, not averaged.
 */

/** Each bucket is 1 % wider than the one before: a percentile is exact to within 1 %. */
const GROWTH = 1.01;
const LOG_GROWTH = Math.log(GROWTH);
const BUCKETS = Math.ceil(Math.log(1e9) / LOG_GROWTH) + 1;

/** What a histogram sends over IPC. */
export interface HistogramData {
  counts: number[];
  count: number;
  maxMicros: number;
}

export class Histogram {
  private readonly counts = new Float64Array(BUCKETS);
  count = 0;
  maxMicros = 0;

  /** Records one sample, in microseconds (values below 1 µs count as 1 µs). */
  record(micros: number): void {
    const value = micros < 1 ? 1 : micros;
    const index = Math.min(BUCKETS - 1, Math.floor(Math.log(value) / LOG_GROWTH));
    this.counts[index]!++;
    this.count++;
    if (value > this.maxMicros) this.maxMicros = value;
  }

  /** Sparse-friendly plain form; trailing zero buckets are dropped to keep IPC messages small. */
  toData(): HistogramData {
    let last = BUCKETS - 1;
    while (last >= 0 && this.counts[last] === 0) last--;
    return {
      counts: Array.from(this.counts.subarray(0, last + 1)),
      count: this.count,
      maxMicros: this.maxMicros,
    };
  }

  add(data: HistogramData): void {
    data.counts.forEach((n, i) => (this.counts[i]! += n));
    this.count += data.count;
    this.maxMicros = Math.max(this.maxMicros, data.maxMicros);
  }

  /** The value at quantile `q` (0..1) in microseconds: the upper edge of its bucket; 0 when empty. */
  quantile(q: number): number {
    if (this.count === 0) return 0;
    const rank = Math.max(1, Math.ceil(q * this.count));
    let seen = 0;
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.counts[i]!;
      if (seen >= rank) return Math.min(this.maxMicros, GROWTH ** (i + 1));
    }
    return this.maxMicros;
  }

  static from(parts: readonly HistogramData[]): Histogram {
    const histogram = new Histogram();
    for (const part of parts) histogram.add(part);
    return histogram;
  }
}

/** Latency figures in milliseconds, as the report shows them. */
export interface LatencySummary {
  p50: number;
  p95: number;
  p99: number;
  max: number;
}

export function summarize(histogram: Histogram): LatencySummary {
  const ms = (micros: number) => micros / 1000;
  return {
    p50: ms(histogram.quantile(0.5)),
    p95: ms(histogram.quantile(0.95)),
    p99: ms(histogram.quantile(0.99)),
    max: ms(histogram.maxMicros),
  };
}

/** The shared clock: CLOCK_MONOTONIC, which on Linux is one clock for every process on the machine. */
export function nowMicros(): number {
  return Number(process.hrtime.bigint() / 1000n);
}
