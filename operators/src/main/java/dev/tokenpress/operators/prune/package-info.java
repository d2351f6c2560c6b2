/**
 * Token-dropping operators, one class per algorithm with its paper cited in the class comment:
 * {@link dev.tokenpress.operators.prune.RandomDrop} (baseline floor),
 * {@link dev.tokenpress.operators.prune.VtcCls} (VTC-CLS) and
 * {@link dev.tokenpress.operators.prune.FastV} (FastV). Their configs are in
 * {@code dev.tokenpress.operators.api}.
 */
package dev.tokenpress.operators.prune;
