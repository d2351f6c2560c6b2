/**
 * Operators that merge tokens (weighted means of groups of tokens, with sizes and provenance
 * tracked by {@link dev.tokenpress.operators.api.HookRunner}).
 */
package dev.tokenpress.operators.merge;
