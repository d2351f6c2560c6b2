/**
 * The operator API the generation loop calls: {@link dev.tokenpress.operators.api.Hook}s, requested
 * {@link dev.tokenpress.operators.api.Signal}s, per-hook contexts, {@link
 * dev.tokenpress.operators.api.TokenSelection}s and the {@link
 * dev.tokenpress.operators.api.TokenOperator} contract; validated config records under the sealed
 * {@link dev.tokenpress.operators.api.OperatorConfig}; and the JSON-serialisable {@link
 * dev.tokenpress.operators.api.CompressionPlan}. JDK only.
 */
package dev.tokenpress.operators.api;
