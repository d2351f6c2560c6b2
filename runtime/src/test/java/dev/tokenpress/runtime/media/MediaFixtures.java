package dev.tokenpress.runtime.media;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;

/** Loads the fixtures written by {@code src/test/python/gen_media_fixtures.py}. */
final class MediaFixtures {
  private MediaFixtures() {}

  static byte[] bytes(String name) {
    try (InputStream in = MediaFixtures.class.getResourceAsStream("/media/" + name)) {
      if (in == null) {
        throw new IllegalStateException("missing test resource /media/" + name);
      }
      return in.readAllBytes();
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  static JsonNode expected() {
    try {
      return new ObjectMapper().readTree(bytes("expected.json"));
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }
}
