/**
 * Operators that change what the LM attends to instead of which tokens it sees: VAR (visual
 * attention redistribution from sink tokens) and CMAI (cross-modal attention inhibition). They act
 * at the {@link dev.tokenpress.operators.api.Hook#PREFILL} and {@link
 * dev.tokenpress.operators.api.Hook#DECODE} hooks, through an additive bias before the softmax or a
 * rewrite of the probabilities after it ({@link
 * dev.tokenpress.operators.api.TokenOperator#rewriteAttention}), and compose with the
 * token-reduction operators of a plan.
 */
package dev.tokenpress.operators.attention;
