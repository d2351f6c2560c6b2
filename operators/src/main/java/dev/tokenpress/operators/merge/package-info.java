/**
 * Token-merging algorithms, one class per algorithm with its paper cited in the class comment:
 * {@link dev.tokenpress.operators.merge.Vmtc} (VMTC, reconstructed). They are pure functions over
 * {@code float[]} tokens that return the merged sequence with its provenance (which original
 * tokens, with which weights, each output token stands for); the runtime adapters that call them
 * at a hook live with the operator API.
 */
package dev.tokenpress.operators.merge;
