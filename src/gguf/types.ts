/**
 * GGUF value and tensor-info types shared by the reader and the writer.
 * The byte layout: docs/formats.md#gguf (and the head of reader.ts).
 */

import type { FormatName } from '../formats/index.js'

/** Metadata value types, as numbered on disk (gguf.h `gguf_type`). */
export enum GgufType {
  UINT8 = 0, INT8 = 1, UINT16 = 2, INT16 = 3, UINT32 = 4, INT32 = 5, FLOAT32 = 6,
  BOOL = 7, STRING = 8, ARRAY = 9, UINT64 = 10, INT64 = 11, FLOAT64 = 12,
}

/** A scalar metadata value. 64-bit integers are `bigint`; other numbers are `number`. */
export type GgufScalar = number | bigint | boolean | string

/**
 * An array value. Arrays keep their element type so a read → write round trip is exact.
 * Elements are scalars, or, when `itemType` is ARRAY (nested arrays), `GgufArray`s, each
 * with its own item type (on disk every inner array carries its own type and count).
 */
export interface GgufArray {
  type: GgufType.ARRAY
  itemType: GgufType
  value: GgufScalar[] | GgufArray[]
}

/** A metadata value: a typed scalar or a typed array. */
export type GgufValue =
  | { type: Exclude<GgufType, GgufType.ARRAY>; value: GgufScalar }
  | GgufArray

/** Ordered metadata map (insertion order = file order). */
export type GgufMetadata = Map<string, GgufValue>

/** One tensor as described in the header. */
export interface GgufTensorInfo {
  name: string
  /** Dimensions, ne0 first (ne0 = the contiguous, "input" dimension K of a weight). */
  dims: number[]
  /** Raw type id as stored in the file. */
  typeId: number
  /** Resolved format name (e.g. 'I2_S', 'F16'); see src/formats/index.ts. */
  format: FormatName
  /** Offset relative to the start of the tensor data section. */
  offset: number
  /** Size in bytes of the tensor payload. */
  byteSize: number
}

export interface GgufFile {
  version: number
  metadata: GgufMetadata
  tensors: GgufTensorInfo[]
  /** Alignment of tensor data (general.alignment, default 32). */
  alignment: number
  /** Absolute file offset of the tensor data section. */
  dataOffset: number
}
