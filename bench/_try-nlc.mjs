import { getLlama, LlamaLogLevel } from 'node-llama-cpp'
const threads = Number(process.argv[3] ?? 2)
const llama = await getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel[process.env.LL ?? 'warn'], maxThreads: threads })
const model = await llama.loadModel({ modelPath: process.argv[2] })
const ctx = await model.createContext({ contextSize: 256, threads: { ideal: threads, min: threads }, batchSize: 128 })
const seq = ctx.getSequence()
const toks = Array.from({ length: 128 }, (_, i) => 1000 + i)
const c0 = process.cpuUsage()
let t = performance.now()
await seq.evaluateWithoutGeneratingNewTokens(toks)
const tp = performance.now()
console.log('prompt', (tp - t).toFixed(0), 'ms', (128 / ((tp - t) / 1000)).toFixed(2), 'tok/s')
let n = 0, tFirst
for await (const tok of seq.evaluate([5], { temperature: 0 })) { n++; if (n === 1) tFirst = performance.now(); if (n === 33) break }
const tEnd = performance.now()
const c = process.cpuUsage(c0)
console.log('decode', ((n - 1) / ((tEnd - tFirst) / 1000)).toFixed(2), 'tok/s; cpu/wall', ((c.user + c.system) / 1000 / (tEnd - t)).toFixed(2))
await ctx.printTimings?.()
