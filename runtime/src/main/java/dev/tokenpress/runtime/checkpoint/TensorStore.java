package dev.tokenpress.runtime.checkpoint;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.stream.Stream;

/**
 * All tensors of a Hugging Face checkpoint directory: {@code model.safetensors.index.json}
 * (sharded), else {@code model.safetensors}, else every {@code *.safetensors} file in the
 * directory. Shards open lazily on first use.
 */
public final class TensorStore implements AutoCloseable {
  private static final ObjectMapper JSON = new ObjectMapper();

  private final Path dir;
  private final Map<String, Path> fileOf;
  private final Map<Path, SafetensorsFile> open = new LinkedHashMap<>();

  private TensorStore(Path dir, Map<String, Path> fileOf) {
    this.dir = dir;
    this.fileOf = fileOf;
  }

  public static TensorStore open(Path dir) {
    if (!Files.isDirectory(dir)) {
      throw new IllegalArgumentException("checkpoint directory does not exist: " + dir);
    }
    Map<String, Path> fileOf = new LinkedHashMap<>();
    Path index = dir.resolve("model.safetensors.index.json");
    TensorStore store;
    if (Files.isRegularFile(index)) {
      try {
        JsonNode map = JSON.readTree(index.toFile()).path("weight_map");
        if (!map.isObject()) {
          throw new IllegalArgumentException("no weight_map object in " + index);
        }
        for (Map.Entry<String, JsonNode> e : map.properties()) {
          Path shard = dir.resolve(e.getValue().asText());
          if (!Files.isRegularFile(shard)) {
            throw new IllegalArgumentException(
                "shard "
                    + shard.getFileName()
                    + " named in "
                    + index.getFileName()
                    + " for tensor "
                    + e.getKey()
                    + " is missing");
          }
          fileOf.put(e.getKey(), shard);
        }
      } catch (IOException e) {
        throw new UncheckedIOException("cannot read " + index, e);
      }
      return new TensorStore(dir, fileOf);
    }
    List<Path> files = new ArrayList<>();
    Path single = dir.resolve("model.safetensors");
    if (Files.isRegularFile(single)) {
      files.add(single);
    } else {
      try (Stream<Path> s = Files.list(dir)) {
        s.filter(p -> p.getFileName().toString().endsWith(".safetensors"))
            .sorted()
            .forEach(files::add);
      } catch (IOException e) {
        throw new UncheckedIOException("cannot list " + dir, e);
      }
    }
    if (files.isEmpty()) {
      throw new IllegalArgumentException("no model.safetensors, index or *.safetensors in " + dir);
    }
    store = new TensorStore(dir, fileOf);
    for (Path f : files) {
      SafetensorsFile sf = store.file(f);
      for (String name : sf.tensors().keySet()) {
        fileOf.put(name, f);
      }
    }
    return store;
  }

  public Path directory() {
    return dir;
  }

  public Set<String> names() {
    return Collections.unmodifiableSet(new TreeSet<>(fileOf.keySet()));
  }

  public boolean contains(String name) {
    return fileOf.containsKey(name);
  }

  public TensorEntry entry(String name) {
    return fileFor(name).entry(name);
  }

  public long[] shape(String name) {
    return entry(name).shape();
  }

  public float[] floats(String name) {
    return fileFor(name).readFloats(name);
  }

  /** Reads {@code count} elements from element {@code first}. */
  public void floats(String name, long first, float[] dst, int dstOff, int count) {
    fileFor(name).readFloats(name, first, dst, dstOff, count);
  }

  private SafetensorsFile fileFor(String name) {
    Path f = fileOf.get(name);
    if (f == null) {
      throw new IllegalArgumentException("tensor " + name + " not found in checkpoint " + dir);
    }
    return file(f);
  }

  private synchronized SafetensorsFile file(Path f) {
    return open.computeIfAbsent(f, SafetensorsFile::open);
  }

  @Override
  public synchronized void close() {
    for (SafetensorsFile f : open.values()) {
      f.close();
    }
    open.clear();
  }
}
