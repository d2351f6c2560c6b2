package dev.tokenpress.operators.api;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;

/**
 * The seeding rules shared by the runtime and the operators, so that a rerun of a job gives the
 * same output for every record whatever the partitioning, executor or thread.
 */
public final class Seeds {

  private Seeds() {}

  /**
   * The per-record seed: the first 8 bytes (big-endian) of {@code SHA-256(jobSeed as 8 big-endian
   * bytes || UTF-8(recordId))}.
   */
  public static long recordSeed(String recordId, long jobSeed) {
    if (recordId == null) {
      throw new IllegalArgumentException("recordId must not be null");
    }
    MessageDigest sha;
    try {
      sha = MessageDigest.getInstance("SHA-256");
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("SHA-256 is not available", e);
    }
    for (int i = 7; i >= 0; i--) {
      sha.update((byte) (jobSeed >>> (8 * i)));
    }
    byte[] d = sha.digest(recordId.getBytes(StandardCharsets.UTF_8));
    long v = 0;
    for (int i = 0; i < 8; i++) {
      v = (v << 8) | (d[i] & 0xff);
    }
    return v;
  }

  /**
   * Combines two seeds into one, e.g. the per-record seed with an operator's configured seed:
   * {@code mix64(a ^ mix64(b + 0x9E3779B97F4A7C15L))}, where {@code mix64} is the SplitMix64
   * finaliser. Not symmetric: {@code combine(a, b) != combine(b, a)} in general.
   */
  public static long combine(long a, long b) {
    return mix64(a ^ mix64(b + 0x9E3779B97F4A7C15L));
  }

  /** The SplitMix64 / MurmurHash3 64-bit finaliser. */
  public static long mix64(long z) {
    z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
    z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
    return z ^ (z >>> 31);
  }
}
