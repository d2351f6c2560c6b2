/**
 * Immutable row-major tensors over {@code float[]} ({@link
 * dev.tokenpress.operators.tensor.FloatTensor}) and the scalar kernels the operators share ({@link
 * dev.tokenpress.operators.tensor.Kernels}: stable softmax, head averaging, deterministic top-k).
 * JDK only.
 */
package dev.tokenpress.operators.tensor;
