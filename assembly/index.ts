// Kernel module entry: pure compute over the imported shared memory. No allocation, no
// imports but memory (and abort, compiled out by --noAssert / --runtime stub).
// Every export is `op_weight_act` or `op_type`; kernels that split work take an item range (first, end).
export * from './formats/i2s'
export * from './formats/tl'
export * from './formats/q8b'
export * from './formats/q6b'
export * from './formats/q4b'
export * from './formats/q6_k'
export * from './formats/q8_0'
export * from './ops/quantize'
export * from './ops/norm'
export * from './ops/elementwise'
export * from './ops/rope'
export * from './ops/attention'
export * from './ops/matvec-float'
export * from './ops/select'
export * from './ops/prefault'
