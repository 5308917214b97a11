/**
 * Hugging Face Hub addressing: `hf:` model ids → resolve URLs, the endpoint and token
 * (options, else `BITNET_HF_ENDPOINT` / `HF_ENDPOINT` and `HF_TOKEN` as huggingface_hub reads them).
 *
 * Forms: `hf:owner/repo/path/to/file.gguf` (one file), `hf:owner/repo:quant` (the repo's GGUF
 * whose name contains `quant`, e.g. `:i2_s`), `hf:owner/repo` (its only GGUF, else its
 * safetensors folder). `@revision` after the repo name pins a branch, tag or commit.
 */
import { readEnv } from '../env.js'
import { DownloadError, InvalidArgumentError, NotFoundError } from '../errors.js'

/**
 * The model used when none is given: Microsoft's official BitNet b1.58 2B4T, I2_S GGUF.
 *
 * @example
 * ```ts
 * const model = await loadModel() // same as loadModel(DEFAULT_MODEL)
 * ```
 */
export const DEFAULT_MODEL = 'hf:microsoft/bitnet-b1.58-2B-4T-gguf/ggml-model-i2_s.gguf'

export interface HubOptions {
  /** Hub base URL. Default: `BITNET_HF_ENDPOINT`, `HF_ENDPOINT`, else https://huggingface.co. */
  endpoint?: string
  /** Branch, tag or commit. Default 'main' (an `@rev` in the id wins). */
  revision?: string
  /** Access token for gated/private repos. Default: `HF_TOKEN`. */
  token?: string
}

/** A parsed `hf:` id. */
export interface HubId {
  repo: string
  revision?: string
  /** A file path inside the repo. */
  file?: string
  /** A quantization tag to pick the GGUF by (`:i2_s`). */
  quant?: string
}

/** True for strings in the `hf:` scheme. */
export function isHubId(s: string): boolean {
  return s.startsWith('hf:')
}

/**
 * Parses `hf:owner/repo[@rev][/file | :quant]`.
 *
 * @example
 * ```ts
 * parseHubId('hf:microsoft/bitnet-b1.58-2B-4T-gguf:i2_s') // { repo: 'microsoft/bitnet-b1.58-2B-4T-gguf', quant: 'i2_s' }
 * ```
 */
export function parseHubId(id: string): HubId {
  const m = /^hf:([\w.-]+\/[\w.-]+)(?:@([^/:]+))?(?:\/(.+)|:([\w.-]+))?$/.exec(id)
  if (!m || m[3]?.split('/').some((s) => s === '' || s === '.' || s === '..')) {
    throw new InvalidArgumentError(`'${id}' is not a Hugging Face id (hf:owner/repo[@revision][/file] or hf:owner/repo:quant)`)
  }
  return { repo: m[1], revision: m[2], file: m[3], quant: m[4] }
}

export function hubEndpoint(opts: HubOptions = {}): string {
  return (opts.endpoint ?? readEnv('BITNET_HF_ENDPOINT') ?? readEnv('HF_ENDPOINT') ?? 'https://huggingface.co').replace(/\/+$/, '')
}

/** Headers for hub requests (the token, when there is one). */
export function hubHeaders(opts: HubOptions = {}): Record<string, string> {
  const token = opts.token ?? readEnv('HF_TOKEN')
  return token ? { authorization: `Bearer ${token}` } : {}
}

/** The resolve URL of one file: {endpoint}/{repo}/resolve/{revision}/{file}. */
export function resolveUrl(repo: string, file: string, revision: string, opts: HubOptions = {}): string {
  const path = file.split('/').map(encodeURIComponent).join('/')
  return `${hubEndpoint(opts)}/${repo}/resolve/${encodeURIComponent(revision)}/${path}`
}

/** The files to fetch for an id: one GGUF, or an HF folder's config, tokenizer and weights. */
export interface HubFiles {
  repo: string
  revision: string
  /** Repo-relative paths. */
  files: string[]
  /** 'gguf': files[0] is the model; 'folder': a safetensors folder (config.json, weights, tokenizer). */
  kind: 'gguf' | 'folder'
}

/** Files of an HF safetensors folder that a loader reads besides the weights. */
const FOLDER_FILES = ['config.json', 'tokenizer.json', 'tokenizer_config.json', 'generation_config.json', 'special_tokens_map.json']

/**
 * Resolves an id to the files to download. A single-file id needs no network; repo and
 * `:quant` ids list the repo through the hub API (`/api/models/{repo}/revision/{rev}`).
 *
 * @example
 * ```ts
 * const { files, kind } = await resolveHubFiles('hf:microsoft/bitnet-b1.58-2B-4T-gguf')
 * // kind 'gguf', files ['ggml-model-i2_s.gguf']
 * ```
 */
export async function resolveHubFiles(id: string, opts: HubOptions & { signal?: AbortSignal } = {}): Promise<HubFiles> {
  const h = parseHubId(id)
  const revision = h.revision ?? opts.revision ?? 'main'
  if (h.file) return { repo: h.repo, revision, files: [h.file], kind: h.file.endsWith('.gguf') ? 'gguf' : 'folder' }
  const siblings = await listRepo(h.repo, revision, opts)
  const ggufs = siblings.filter((f) => f.toLowerCase().endsWith('.gguf'))
  if (h.quant) {
    const norm = (s: string) => s.toLowerCase().replace(/-/g, '_')
    const q = norm(h.quant)
    const hits = ggufs.filter((f) => norm(f.split('/').pop()!).includes(q))
    if (hits.length !== 1) {
      throw new NotFoundError(`hf:${h.repo}:${h.quant}`,
        `${hits.length ? 'several' : 'no'} GGUF files match '${h.quant}' (files: ${ggufs.join(', ') || 'none'})`, 0)
    }
    return { repo: h.repo, revision, files: hits, kind: 'gguf' }
  }
  if (ggufs.length === 1) return { repo: h.repo, revision, files: ggufs, kind: 'gguf' }
  if (ggufs.length > 1) {
    throw new InvalidArgumentError(`hf:${h.repo} has several GGUF files; pick one with hf:${h.repo}/FILE or hf:${h.repo}:QUANT (${ggufs.join(', ')})`)
  }
  const weights = siblings.filter((f) => /^model(-\d+-of-\d+)?\.safetensors$|^model\.safetensors\.index\.json$/.test(f))
  if (!siblings.includes('config.json') || weights.length === 0) {
    throw new NotFoundError(`hf:${h.repo}`, 'the repo has neither a GGUF file nor config.json + model*.safetensors', 0)
  }
  return { repo: h.repo, revision, files: [...FOLDER_FILES.filter((f) => siblings.includes(f)), ...weights], kind: 'folder' }
}

async function listRepo(repo: string, revision: string, opts: HubOptions & { signal?: AbortSignal }): Promise<string[]> {
  const url = `${hubEndpoint(opts)}/api/models/${repo}/revision/${encodeURIComponent(revision)}`
  let res: Response
  try {
    res = await fetch(url, { headers: hubHeaders(opts), signal: opts.signal })
  } catch (e) {
    opts.signal?.throwIfAborted()
    throw new DownloadError(url, `cannot list the repo: ${(e as Error).message}`, { cause: e })
  }
  if (res.status === 404 || res.status === 401) throw new NotFoundError(url, `no such repo or revision (HTTP ${res.status})`, res.status)
  if (!res.ok) throw new DownloadError(url, `cannot list the repo: HTTP ${res.status}`, { status: res.status })
  const body = await res.json() as { siblings?: { rfilename?: unknown }[] }
  return (body.siblings ?? []).map((s) => s.rfilename).filter((f): f is string => typeof f === 'string')
}
