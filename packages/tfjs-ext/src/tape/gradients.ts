import * as tf from '@tensorflow/tfjs';
import { engineInternals, nextTensorId, type TapeNode } from './engineTypes';
import { shareHandle } from './shareSaved';

/**
 * The tape nodes on a path from one of `xs` to `y`, in tape order, each with its inputs pruned to those that depend on
 * `xs` (what tfjs-core's tape.ts getFilteredNodesXToY computes).
 */
function pathNodes(tape: TapeNode[], xs: tf.Tensor[], y: tf.Tensor): TapeNode[] {
  const fromX = new Set(xs.map((x) => x.id));
  const nodesFromX = new Set<number>();
  for (const node of tape) {
    if (Object.values(node.inputs).some((t) => fromX.has(t.id))) {
      for (const o of node.outputs) fromX.add(o.id);
      nodesFromX.add(node.id);
    }
  }
  const toY = new Set([y.id]);
  const nodesToY = new Set<number>();
  for (let i = tape.length - 1; i >= 0; i--) {
    const node = tape[i]!;
    const inputs = Object.values(node.inputs);
    if (inputs.length > 0 && node.outputs.some((o) => toY.has(o.id))) {
      for (const t of inputs) toY.add(t.id);
      nodesToY.add(node.id);
    }
  }
  const out: TapeNode[] = [];
  for (const node of tape) {
    if (!nodesFromX.has(node.id) || !nodesToY.has(node.id)) continue;
    const inputs: Record<string, tf.Tensor> = {};
    for (const [name, t] of Object.entries(node.inputs)) if (fromX.has(t.id)) inputs[name] = t;
    out.push({ ...node, inputs });
  }
  return out;
}

function disposeSaved(node: TapeNode): void {
  for (const t of node.saved ?? []) t.dispose();
}

/**
 * Gradients of the scalar `f()` with respect to `xs`, like tf.variableGrads' engine.gradients, but releasing memory as
 * the backward pass goes: tfjs keeps the gradient of every intermediate tensor and every tensor saved for the backward
 * pass until the whole backward pass ends, so its peak is about all activations plus all their gradients. Here a
 * node's output gradients and saved tensors are disposed as soon as that node is processed (nothing later reads them),
 * and saved tensors of nodes off the x -> y path are disposed before the backward pass starts. Same nodes, same
 * order, same additions: the gradients are bit-identical to tfjs's.
 * Returns the value of f and one gradient per x (null where y does not depend on x); `dy` (shape of f's value, default
 * ones) is the gradient flowing into f's value. Inside another gradient computation (higher-order gradients) it defers
 * to tfjs, which must keep the tape.
 */
export function gradientsReleasing(
  f: () => tf.Tensor,
  xs: tf.Tensor[],
  dy?: tf.Tensor,
): { value: tf.Tensor; grads: (tf.Tensor | null)[] } {
  const engine = engineInternals();
  if (engine.state.gradientDepth > 0) {
    const { value, grads } = (engine as unknown as { gradients: (f: () => tf.Tensor, xs: tf.Tensor[], dy: tf.Tensor | null, allow: boolean) => { value: tf.Tensor; grads: (tf.Tensor | null)[] } }).gradients(f, xs, dy ?? null, true);
    return { value, grads };
  }
  let tape: TapeNode[] = [];
  // Nested in another backward pass (recompute's gradient): that pass's driver may still read its tape afterwards.
  const outerTape = engine.state.activeTape;
  try {
    const y = engine.scopedRun(
      () => engine.startTape(),
      () => engine.endTape(),
      () => {
        tape = engine.state.activeTape ?? [];
        return engine.tidy('forward', f);
      },
    );
    if (!(y instanceof tf.Tensor)) throw new Error('gradients: f must return a tensor');
    const nodes = pathNodes(tape, xs, y);
    const onPath = new Set(nodes.map((n) => n.id));
    for (const node of tape) if (!onPath.has(node.id)) disposeSaved(node);
    return engine.tidy('backward', () => {
      const acc = new Map<number, tf.Tensor>([[y.id, dy ? shareHandle(dy) : tf.ones(y.shape)]]);
      const live = new Set<tf.Tensor>(acc.values());
      const keepIds = new Set(xs.map((x) => x.id));
      for (let i = nodes.length - 1; i >= 0; i--) {
        const node = nodes[i]!;
        if (!node.gradient) throw new Error(`Cannot compute gradient: gradient function not found for ${node.kernelName}.`);
        const dys = node.outputs.map((o) => acc.get(o.id) ?? null);
        const firstNew = nextTensorId();
        const names = Object.keys(node.inputs);
        // One tidy per node frees what a custom gradient computed for inputs off the path; one per input as in tfjs.
        const dxs = engine.tidy(node.kernelName, () => {
          const inputGradients = node.gradient!(dys);
          return names.map((name) => {
            if (!(name in inputGradients)) {
              throw new Error(`Cannot backprop through input ${name}. Available gradients found: ${Object.keys(inputGradients)}.`);
            }
            return engine.tidy(name, () => inputGradients[name]!());
          });
        });
        const fresh = new Set<tf.Tensor>();
        names.forEach((name, j) => {
          let dx = dxs[j]!;
          const x = node.inputs[name]!;
          if (dx.dtype !== 'float32') {
            throw new Error(`Error in gradient for op ${node.kernelName}. The gradient of input ${name} must have 'float32' dtype, but has '${dx.dtype}'`);
          }
          if (!tf.util.arraysEqual(dx.shape, x.shape)) {
            throw new Error(`Error in gradient for op ${node.kernelName}. The gradient of input '${name}' has shape '${dx.shape}', which does not match the shape of the input '${x.shape}'`);
          }
          // A gradient that is an older tensor (dy itself, a saved input) or is shared between inputs gets its own
          // handle, so that releasing one map entry never frees another's data.
          if (dx.id < firstNew || fresh.has(dx) || live.has(dx)) dx = shareHandle(dx);
          fresh.add(dx);
          const cur = acc.get(x.id);
          if (cur === undefined) {
            acc.set(x.id, dx);
            live.add(dx);
          } else {
            const sum = tf.add(cur, dx);
            acc.set(x.id, sum);
            live.delete(cur);
            live.add(sum);
            cur.dispose();
          }
        });
        for (const o of node.outputs) {
          const g = acc.get(o.id);
          if (g && !keepIds.has(o.id)) {
            acc.delete(o.id);
            live.delete(g);
            g.dispose();
          }
        }
        disposeSaved(node);
      }
      return { value: y, grads: xs.map((x) => acc.get(x.id) ?? null) };
    });
  } finally {
    for (const node of tape) disposeSaved(node);
    engine.state.activeTape = outerTape;
  }
}

/**
 * tf.variableGrads with gradientsReleasing: gradients of the scalar f over the trainable variables of `varList`,
 * keyed by variable name (non-trainable ones omitted). Throws as tfjs does when no variable is trainable, none is
 * connected to f, or f is not a scalar.
 */
export function variableGradsReleasing(f: () => tf.Scalar, varList: tf.Variable[]): { value: tf.Scalar; grads: tf.NamedTensorMap } {
  const vars = varList.filter((v) => v.trainable);
  if (vars.length === 0) throw new Error(`variableGrads: none of the ${varList.length} variables is trainable`);
  const { value, grads } = gradientsReleasing(f, vars);
  if (!grads.some((g) => g != null)) {
    tf.dispose([value, ...grads.filter((g): g is tf.Tensor => g != null)]);
    throw new Error('variableGrads: no variable is connected to the result of f');
  }
  if (value.rank !== 0) {
    tf.dispose([value, ...grads.filter((g): g is tf.Tensor => g != null)]);
    throw new Error(`variableGrads: f must return a scalar, but it returned a rank-${value.rank} tensor`);
  }
  const named: tf.NamedTensorMap = {};
  vars.forEach((v, i) => {
    const g = grads[i];
    if (g) named[v.name] = g;
  });
  return { value: value as tf.Scalar, grads: named };
}
