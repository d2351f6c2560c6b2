/**
 * Token-merging algorithms, one class per algorithm with its paper cited in the class comment:
 * {@link dev.tokenpress.operators.merge.ToMe} and {@link dev.tokenpress.operators.merge.Vmtc}
 * (VMTC, reconstructed). Merges are weighted means of groups of tokens, with sizes and provenance
 * (which original tokens, with which weights, each output token stands for) tracked by {@link
 * dev.tokenpress.operators.api.HookRunner}.
 */
package dev.tokenpress.operators.merge;
