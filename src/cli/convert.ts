/** `bitnet convert IN OUT`: any model this engine loads → a GGUF file, with a progress bar. */
import { convertToGguf, FILE_TYPES, type ConvertTarget, type MatrixTarget } from '../convert/index.js'
import { InvalidArgumentError } from '../errors.js'
import { writeChunksToFile } from '../io/file.js'
import { openModelContents } from '../api/load-model.js'
import { oneOf, parse, printJson } from './common.js'
import { formatBytes, ProgressBar } from './progress.js'

export const CONVERT_HELP = `bitnet convert IN OUT [--to FORMAT] [--output-type TYPE]
  IN: a GGUF file or a Hugging Face folder (config.json, model.safetensors, tokenizer.json)
      --to i2s|tq2_0|tq1_0|tl1|tl2|f32|f16|bf16
                           ternary weights (default i2s: bitnet.cpp's official layout;
                           tq*: for upstream llama.cpp, rows must be multiples of 256)
      --output-type f16|q8_0|q6_k   embedding / output matrix (default f16)
      --json               print {"file","bytes","to","output_type"}`

export async function convertCommand(argv: string[], signal: AbortSignal): Promise<number> {
  const { values, positionals } = parse(argv, {
    to: { type: 'string', default: 'i2s' },
    'output-type': { type: 'string', default: 'f16' },
    json: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  }, true)
  if (values.help) { process.stdout.write(CONVERT_HELP + '\n'); return 0 }
  const [input, output] = positionals
  if (!input || !output || positionals.length > 2) throw new InvalidArgumentError('usage: bitnet convert IN OUT [--to FORMAT] [--output-type TYPE]')
  const to = oneOf(values.to, 'to', Object.keys(FILE_TYPES) as ConvertTarget[])!
  const outputType = oneOf(values['output-type'], 'output-type', ['f16', 'q8_0', 'q6_k'] as MatrixTarget[])!
  const contents = await openModelContents(input)
  const bar = new ProgressBar('converting')
  let bytes: number
  try {
    bytes = await writeChunksToFile(output, convertToGguf(contents, {
      to, outputType, signal,
      onProgress: (p) => bar.update(p.loaded, p.total, `${formatBytes(p.loaded)} / ${formatBytes(p.total)}`),
    }))
  } finally {
    bar.done()
    await contents.close?.()
  }
  if (values.json) printJson({ file: output, bytes, to, output_type: outputType })
  else process.stderr.write(`wrote ${output} (${formatBytes(bytes)}, ${to}, embedding ${outputType})\n`)
  return 0
}
