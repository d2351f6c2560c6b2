package dev.tokenpress.spark;

import java.io.Serializable;

/**
 * Provenance of the engine that produced a row.
 *
 * @param modelSha256 SHA-256 identifying the model bundle
 * @param engineVersion tokenpress runtime and ONNX Runtime versions
 */
public record EngineInfo(String modelSha256, String engineVersion) implements Serializable {}
