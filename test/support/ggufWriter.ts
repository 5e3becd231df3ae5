// Minimal GGUF v3 writer: just enough of the format to produce models llama.cpp loads.
// Tensor data is streamed chunk by chunk so a ~700 MB model never sits in memory whole.
import { open, rename, rm } from 'node:fs/promises';

const ALIGNMENT = 32;

/** GGUF metadata value type ids. */
export const ValueType = {
  U32: 4,
  I32: 5,
  F32: 6,
  BOOL: 7,
  STRING: 8,
  ARRAY: 9,
  U64: 10,
} as const;

type ScalarType = typeof ValueType.U32 | typeof ValueType.I32 | typeof ValueType.F32 | typeof ValueType.U64;

export type MetaValue =
  | { type: ScalarType; value: number }
  | { type: typeof ValueType.BOOL; value: boolean }
  | { type: typeof ValueType.STRING; value: string }
  | { type: typeof ValueType.ARRAY; elementType: typeof ValueType.STRING; value: readonly string[] }
  | { type: typeof ValueType.ARRAY; elementType: ScalarType; value: ArrayLike<number> };

export const meta = {
  u32: (value: number): MetaValue => ({ type: ValueType.U32, value }),
  i32: (value: number): MetaValue => ({ type: ValueType.I32, value }),
  f32: (value: number): MetaValue => ({ type: ValueType.F32, value }),
  u64: (value: number): MetaValue => ({ type: ValueType.U64, value }),
  bool: (value: boolean): MetaValue => ({ type: ValueType.BOOL, value }),
  str: (value: string): MetaValue => ({ type: ValueType.STRING, value }),
  strings: (value: readonly string[]): MetaValue => ({ type: ValueType.ARRAY, elementType: ValueType.STRING, value }),
  i32s: (value: ArrayLike<number>): MetaValue => ({ type: ValueType.ARRAY, elementType: ValueType.I32, value }),
};

/** ggml tensor type ids (only the two we write). */
export const TensorType = { F32: 0, Q8_0: 8 } as const;
export type TensorTypeId = (typeof TensorType)[keyof typeof TensorType];

export interface TensorSpec {
  name: string;
  /** ggml order: row length first, e.g. [n_in, n_out] for a weight matrix. */
  dims: number[];
  type: TensorTypeId;
  /**
   * Fills `out` with the float values of elements [start, start + out.length).
   * Called with whole rows, in order, so generators can keep sequential state.
   */
  fill(out: Float32Array, start: number): void;
}

const Q8_0_BLOCK = 32;
const Q8_0_BLOCK_BYTES = 2 + Q8_0_BLOCK;

export function tensorByteSize(t: Pick<TensorSpec, 'dims' | 'type'>): number {
  const n = t.dims.reduce((a, b) => a * b, 1);
  if (t.type === TensorType.F32) return n * 4;
  if (t.dims[0]! % Q8_0_BLOCK !== 0) throw new Error(`Q8_0 row length must be a multiple of 32: ${t.dims}`);
  return (n / Q8_0_BLOCK) * Q8_0_BLOCK_BYTES;
}

const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);

/** float32 -> IEEE half bits, round to nearest even (Node 20 has no Math.f16round). */
export function toHalf(value: number): number {
  f32Scratch[0] = value;
  const x = u32Scratch[0]!;
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0); // inf / nan
  let e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00; // overflow -> inf
  if (e <= 0) {
    // subnormal half (or zero)
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let half = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    if (rem > halfway || (rem === halfway && (half & 1))) half++;
    return sign | half;
  }
  let half = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (half & 1))) half++; // may carry into exponent: still correct
  return sign | half;
}

/** Quantizes `src` (length multiple of 32) into Q8_0 blocks at `dst[offset..]`, as ggml's reference quantize_row_q8_0 does. */
export function quantizeQ8_0(src: Float32Array, dst: Buffer, offset = 0): void {
  for (let b = 0; b < src.length; b += Q8_0_BLOCK) {
    let amax = 0;
    for (let i = 0; i < Q8_0_BLOCK; i++) {
      const a = Math.abs(src[b + i]!);
      if (a > amax) amax = a;
    }
    const d = amax / 127;
    const id = d ? 1 / d : 0;
    const o = offset + (b / Q8_0_BLOCK) * Q8_0_BLOCK_BYTES;
    dst.writeUInt16LE(toHalf(d), o);
    for (let i = 0; i < Q8_0_BLOCK; i++) dst[o + 2 + i] = Math.round(src[b + i]! * id) & 0xff;
  }
}

/** Growable little-endian byte builder for the header. */
class ByteSink {
  private buf = Buffer.alloc(1 << 16);
  length = 0;

  private reserve(n: number): void {
    if (this.length + n <= this.buf.length) return;
    const next = Buffer.alloc(Math.max(this.buf.length * 2, this.length + n));
    this.buf.copy(next, 0, 0, this.length);
    this.buf = next;
  }
  u32(v: number): void { this.reserve(4); this.buf.writeUInt32LE(v, this.length); this.length += 4; }
  i32(v: number): void { this.reserve(4); this.buf.writeInt32LE(v, this.length); this.length += 4; }
  f32(v: number): void { this.reserve(4); this.buf.writeFloatLE(v, this.length); this.length += 4; }
  u64(v: number): void { this.reserve(8); this.buf.writeBigUInt64LE(BigInt(v), this.length); this.length += 8; }
  u8(v: number): void { this.reserve(1); this.buf[this.length++] = v; }
  str(s: string): void {
    const bytes = Buffer.from(s, 'utf8');
    this.u64(bytes.length);
    this.reserve(bytes.length);
    bytes.copy(this.buf, this.length);
    this.length += bytes.length;
  }
  padTo(alignment: number): void {
    const pad = (alignment - (this.length % alignment)) % alignment;
    this.reserve(pad);
    this.buf.fill(0, this.length, this.length + pad);
    this.length += pad;
  }
  bytes(): Buffer { return this.buf.subarray(0, this.length); }
}

function writeScalar(sink: ByteSink, type: ScalarType, v: number): void {
  if (type === ValueType.U32) sink.u32(v);
  else if (type === ValueType.I32) sink.i32(v);
  else if (type === ValueType.F32) sink.f32(v);
  else sink.u64(v);
}

function writeValue(sink: ByteSink, v: MetaValue): void {
  sink.u32(v.type);
  switch (v.type) {
    case ValueType.BOOL: sink.u8(v.value ? 1 : 0); break;
    case ValueType.STRING: sink.str(v.value); break;
    case ValueType.ARRAY:
      sink.u32(v.elementType);
      sink.u64(v.value.length);
      if (v.elementType === ValueType.STRING) for (const s of v.value as readonly string[]) sink.str(s);
      else for (let i = 0; i < v.value.length; i++) writeScalar(sink, v.elementType, (v.value as ArrayLike<number>)[i]!);
      break;
    default: writeScalar(sink, v.type, v.value);
  }
}

/** Roughly this many elements are generated and written per chunk (bounded memory, few syscalls). */
const CHUNK_ELEMENTS = 1 << 20;

/**
 * Writes a GGUF v3 file. Writes to a temp file next to `path` and renames it into place, so a
 * concurrent reader (or another process generating the same file) never sees a partial model.
 */
export async function writeGguf(path: string, metadata: Array<[string, MetaValue]>, tensors: TensorSpec[]): Promise<void> {
  const header = new ByteSink();
  header.u32(0x46554747); // "GGUF" read as a little-endian u32
  header.u32(3);
  header.u64(tensors.length);
  const kvs: Array<[string, MetaValue]> = [['general.alignment', meta.u32(ALIGNMENT)], ...metadata];
  header.u64(kvs.length);
  for (const [key, value] of kvs) {
    header.str(key);
    writeValue(header, value);
  }
  let offset = 0;
  for (const t of tensors) {
    header.str(t.name);
    header.u32(t.dims.length);
    for (const d of t.dims) header.u64(d);
    header.u32(t.type);
    header.u64(offset);
    offset += tensorByteSize(t);
    offset += (ALIGNMENT - (offset % ALIGNMENT)) % ALIGNMENT;
  }
  header.padTo(ALIGNMENT);

  const tmp = `${path}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
  const fh = await open(tmp, 'w');
  try {
    await fh.write(header.bytes());
    const floats = new Float32Array(CHUNK_ELEMENTS);
    const out = Buffer.alloc(CHUNK_ELEMENTS * 4);
    const zeros = Buffer.alloc(ALIGNMENT);
    for (const t of tensors) {
      const rowLen = t.dims[0]!;
      const total = t.dims.reduce((a, b) => a * b, 1);
      // Whole rows per chunk so fill() can reason per row.
      const chunk = Math.max(rowLen, Math.floor(CHUNK_ELEMENTS / rowLen) * rowLen);
      const src = chunk <= floats.length ? floats : new Float32Array(chunk);
      const dst = chunk <= floats.length ? out : Buffer.alloc(chunk * 4);
      for (let start = 0; start < total; start += chunk) {
        const n = Math.min(chunk, total - start);
        const view = src.subarray(0, n);
        t.fill(view, start);
        let bytes: number;
        if (t.type === TensorType.F32) {
          Buffer.from(view.buffer, view.byteOffset, n * 4).copy(dst);
          bytes = n * 4;
        } else {
          quantizeQ8_0(view, dst);
          bytes = (n / Q8_0_BLOCK) * Q8_0_BLOCK_BYTES;
        }
        await fh.write(dst, 0, bytes);
      }
      const size = tensorByteSize(t);
      const pad = (ALIGNMENT - (size % ALIGNMENT)) % ALIGNMENT;
      if (pad) await fh.write(zeros, 0, pad);
    }
    await fh.close();
    await rename(tmp, path);
  } catch (err) {
    await fh.close().catch(() => {});
    await rm(tmp, { force: true });
    throw err;
  }
}
