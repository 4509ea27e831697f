/** The dtypes a checkpoint stores. */
export type TensorDtype = 'float32' | 'int32';

/** A tensor as plain data (no tf memory): what loading a checkpoint gives, what EMA restores from. */
export type LoadedTensor = { shape: number[]; dtype: TensorDtype; data: Float32Array | Int32Array };

const fmtShape = (shape: number[]) => `[${shape.join(',')}]`;

/**
 * What differs between a model's parameters (name -> shape, dtype) and a checkpoint's tensors, in one line
 * ("missing a, b; unexpected c; d: checkpoint [3,3,1,8] vs model [3,3,1,16]; … and 79 more"), or null when they match.
 */
export function describeMismatch(model: Map<string, { shape: number[]; dtype?: string }>, loaded: Map<string, { shape: number[]; dtype: string }>): string | null {
  const missing = [...model.keys()].filter((n) => !loaded.has(n));
  const unexpected = [...loaded.keys()].filter((n) => !model.has(n));
  const mismatched: string[] = [];
  for (const [name, v] of model) {
    const t = loaded.get(name);
    if (!t) continue;
    if (fmtShape(t.shape) !== fmtShape(v.shape)) mismatched.push(`${name}: checkpoint ${fmtShape(t.shape)} vs model ${fmtShape(v.shape)}`);
    else if (v.dtype !== undefined && t.dtype !== v.dtype) mismatched.push(`${name}: checkpoint ${t.dtype} vs model ${v.dtype}`);
  }
  if (!missing.length && !unexpected.length && !mismatched.length) return null;
  const parts: string[] = [];
  if (missing.length) parts.push(`missing ${listShort(missing)}`);
  if (unexpected.length) parts.push(`unexpected ${listShort(unexpected)}`);
  if (mismatched.length) parts.push(listShort(mismatched, '; '));
  return parts.join('; ');
}

/** "a, b, c and 4 more": keeps error messages to one short line. */
function listShort(items: string[], sep = ', ', max = 3): string {
  const head = items.slice(0, max).join(sep);
  return items.length > max ? `${head} and ${items.length - max} more` : head;
}
