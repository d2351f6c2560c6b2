/**
 * A strict, dependency-free JSON reader and canonical writer ({@link
 * dev.tokenpress.operators.json.Json}), used for compression plans and their hash.
 */
package dev.tokenpress.operators.json;
