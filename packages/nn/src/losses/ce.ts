import * as tf from '@tensorflow/tfjs';

/**
 * Mean softmax cross-entropy: -mean_i log softmax(logits_i)[labels_i]. logits: [B, K], labels: int32 [B] in [0, K)
 * -> scalar (nats). The fused large-vocabulary form is tfjs-ext's linearCrossEntropy.
 */
export function softmaxCrossEntropy(logits: tf.Tensor2D, labels: tf.Tensor1D): tf.Scalar {
  const onehot = tf.oneHot(labels, logits.shape[1]);
  return tf.neg(tf.mean(tf.sum(tf.mul(tf.logSoftmax(logits), onehot), 1))) as tf.Scalar;
}
