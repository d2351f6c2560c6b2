/**
 * Contrastive-decoding operators: they leave the main sequence alone, run a second sequence through
 * the LM ({@link dev.tokenpress.operators.api.Hook#BRANCH}) and combine the two sequences' logits
 * at {@link dev.tokenpress.operators.api.Hook#LOGITS}. {@link
 * dev.tokenpress.operators.contrast.Damro} (DAMRO) is the first; its config is {@link
 * dev.tokenpress.operators.api.DamroConfig}.
 */
package dev.tokenpress.operators.contrast;
