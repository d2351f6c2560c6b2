package dev.tokenpress.jobs.config;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.exc.InputCoercionException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonMappingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.MapperFeature;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.exc.InvalidFormatException;
import com.fasterxml.jackson.databind.exc.MismatchedInputException;
import com.fasterxml.jackson.databind.exc.UnrecognizedPropertyException;
import com.fasterxml.jackson.databind.json.JsonMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.fasterxml.jackson.dataformat.yaml.YAMLMapper;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.stream.Collectors;

/**
 * Builds a {@link JobConfig}: built-in defaults, merged with a YAML file (or the embedded {@code
 * conf/local-demo.yaml}), merged with {@code key=value} overrides, then bound strictly: unknown
 * keys and invalid values fail with the dotted field path and the allowed keys or values.
 */
public final class ConfigLoader {
  /** Classpath location of the embedded default config. */
  public static final String EMBEDDED_DEFAULT = "conf/local-demo.yaml";

  private static final String DEFAULTS = "dev/tokenpress/jobs/defaults.yaml";
  private static final String SPARK_CONF = "spark.conf.";

  private static final YAMLMapper YAML =
      YAMLMapper.builder()
          .enable(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES)
          .enable(DeserializationFeature.FAIL_ON_NULL_FOR_PRIMITIVES)
          .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS)
          .disable(MapperFeature.ALLOW_COERCION_OF_SCALARS)
          .disable(DeserializationFeature.ACCEPT_FLOAT_AS_INT)
          .build();
  private static final ObjectMapper CANONICAL =
      JsonMapper.builder()
          .enable(MapperFeature.SORT_PROPERTIES_ALPHABETICALLY)
          .enable(SerializationFeature.ORDER_MAP_ENTRIES_BY_KEYS)
          .build();

  private ConfigLoader() {}

  /**
   * Loads a config.
   *
   * @param file YAML file, or null for the embedded default
   * @param overrides {@code key=value} with dotted keys ({@code output.path=/tmp/out}); values are
   *     YAML scalars or flow collections; {@code spark.conf.<property>=value} sets a Spark property
   */
  public static JobConfig load(Path file, List<String> overrides) {
    return load(JobConfig.class, DEFAULTS, EMBEDDED_DEFAULT, file, overrides);
  }

  /**
   * Loads the config of any tokenpress job the same way: {@code defaults} (a classpath YAML
   * resource that holds every key), merged with {@code file} (or the classpath resource {@code
   * embedded}), merged with the overrides, bound strictly to {@code type}.
   */
  public static <T> T load(
      Class<T> type, String defaults, String embedded, Path file, List<String> overrides) {
    ObjectNode tree = (ObjectNode) readResource(defaults);
    Set<String> free = freeMaps(tree, "");
    JsonNode user;
    String origin;
    if (file == null) {
      user = readResource(embedded);
      origin = "embedded " + embedded;
    } else {
      try {
        user = YAML.readTree(Files.readString(file, StandardCharsets.UTF_8));
      } catch (IOException e) {
        throw new ConfigException("file", "cannot read " + file + ": " + e.getMessage());
      }
      origin = file.toString();
    }
    if (user != null && !user.isMissingNode() && !user.isNull()) {
      if (!user.isObject()) {
        throw new ConfigException("(root)", origin + " must be a YAML mapping");
      }
      merge(tree, (ObjectNode) user, "", free);
    }
    for (String o : overrides) {
      applyOverride(tree, o, free);
    }
    return bind(tree, type);
  }

  /** Binds an already merged tree (all sections present) to a validated config. */
  public static JobConfig bind(JsonNode tree) {
    return bind(tree, JobConfig.class);
  }

  /** Binds an already merged tree to a validated config of {@code type}. */
  public static <T> T bind(JsonNode tree, Class<T> type) {
    try {
      return YAML.treeToValue(tree, type);
    } catch (JsonProcessingException | IllegalArgumentException e) {
      throw translate(e, tree);
    }
  }

  /** The resolved config as YAML (for {@code --print-config} and {@code _run.json}). */
  public static String toYaml(Object config) {
    try {
      return YAML.writeValueAsString(config);
    } catch (JsonProcessingException e) {
      throw new IllegalStateException("cannot serialize config", e);
    }
  }

  /** The config as canonical JSON: sorted keys, no whitespace. */
  public static String canonicalJson(JobConfig config) {
    try {
      JsonNode tree = CANONICAL.valueToTree(config);
      return CANONICAL.writeValueAsString(CANONICAL.treeToValue(tree, Object.class));
    } catch (JsonProcessingException e) {
      throw new IllegalStateException("cannot serialize config", e);
    }
  }

  /** Canonical JSON of any JSON tree (sorted object keys). */
  public static String canonicalJson(JsonNode node) {
    try {
      return CANONICAL.writeValueAsString(CANONICAL.treeToValue(node, Object.class));
    } catch (JsonProcessingException e) {
      throw new IllegalStateException("cannot serialize JSON", e);
    }
  }

  /** Lower-case hex SHA-256 of the UTF-8 bytes of {@code text}. */
  public static String sha256(String text) {
    try {
      return HexFormat.of()
          .formatHex(
              MessageDigest.getInstance("SHA-256").digest(text.getBytes(StandardCharsets.UTF_8)));
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }

  private static JsonNode readResource(String name) {
    try (InputStream in = ConfigLoader.class.getClassLoader().getResourceAsStream(name)) {
      if (in == null) {
        throw new IllegalStateException("resource " + name + " is missing from the classpath");
      }
      return YAML.readTree(in);
    } catch (IOException e) {
      throw new UncheckedIOException("cannot read resource " + name, e);
    }
  }

  /**
   * Dotted paths of the mappings that are empty in the defaults ({@code spark.conf}, the evaluate
   * job's {@code grid.values}): free-form maps whose keys the user chooses.
   */
  private static Set<String> freeMaps(ObjectNode defaults, String prefix) {
    Set<String> out = new TreeSet<>();
    defaults
        .fields()
        .forEachRemaining(
            e -> {
              if (e.getValue().isObject()) {
                if (e.getValue().isEmpty()) {
                  out.add(prefix + e.getKey());
                } else {
                  out.addAll(freeMaps((ObjectNode) e.getValue(), prefix + e.getKey() + "."));
                }
              }
            });
    return out;
  }

  /** Deep-merges {@code src} into {@code dst}: objects merge, anything else replaces. */
  private static void merge(ObjectNode dst, ObjectNode src, String prefix, Set<String> free) {
    Iterator<Map.Entry<String, JsonNode>> it = src.fields();
    while (it.hasNext()) {
      Map.Entry<String, JsonNode> e = it.next();
      JsonNode existing = dst.get(e.getKey());
      if (existing == null) {
        // Every key exists in the defaults: anything else is a typo, reported before any value.
        String parent = prefix.isEmpty() ? "" : prefix.substring(0, prefix.length() - 1);
        throw new ConfigException(
            prefix + e.getKey(),
            "unknown key; allowed keys"
                + (parent.isEmpty() ? "" : " under '" + parent + "'")
                + ": "
                + keys(dst));
      }
      boolean freeMap = free.contains(prefix + e.getKey());
      if (existing != null && existing.isObject() && e.getValue().isObject() && !freeMap) {
        merge((ObjectNode) existing, (ObjectNode) e.getValue(), prefix + e.getKey() + ".", free);
      } else if (existing != null && existing.isObject() && e.getValue().isObject()) {
        ((ObjectNode) existing).setAll((ObjectNode) e.getValue());
      } else {
        dst.set(e.getKey(), e.getValue());
      }
    }
  }

  private static void applyOverride(ObjectNode tree, String override, Set<String> free) {
    int eq = override.indexOf('=');
    if (eq <= 0) {
      throw new ConfigException("--set", "expected key=value, got '" + override + "'");
    }
    String key = override.substring(0, eq).trim();
    String raw = override.substring(eq + 1);
    if (key.startsWith(SPARK_CONF)) {
      ObjectNode conf = (ObjectNode) tree.with("spark").with("conf");
      conf.put(key.substring(SPARK_CONF.length()), parseValue(raw, key, false).asText());
      return;
    }
    String[] parts = key.split("\\.");
    ObjectNode node = tree;
    for (int i = 0; i < parts.length - 1; i++) {
      JsonNode child = node.get(parts[i]);
      if (child == null || !child.isObject()) {
        String at = String.join(".", List.of(parts).subList(0, i));
        throw new ConfigException(
            key,
            "unknown key '"
                + parts[i]
                + "'"
                + (at.isEmpty() ? "" : " under '" + at + "'")
                + "; allowed keys: "
                + keys(node));
      }
      node = (ObjectNode) child;
    }
    String leaf = parts[parts.length - 1];
    String parent = String.join(".", List.of(parts).subList(0, parts.length - 1));
    if (!node.has(leaf) && free.contains(parent)) {
      node.set(leaf, parseValue(raw, key, false));
      return;
    }
    if (!node.has(leaf)) {
      throw new ConfigException(key, "unknown key '" + leaf + "'; allowed keys: " + keys(node));
    }
    JsonNode existing = node.get(leaf);
    JsonNode value = parseValue(raw, key, existing.isContainerNode());
    if (value.isContainerNode() && !existing.isContainerNode()) {
      // A scalar setting given text that YAML reads as a collection, e.g. a glob "*.{png,jpg}".
      value = YAML.getNodeFactory().textNode(raw);
    }
    node.set(leaf, value);
  }

  /**
   * A YAML scalar or flow collection. Text that is not valid YAML (e.g. "*.png") stays text, unless
   * {@code collection}: a list or mapping setting (e.g. {@code plan}) reports the syntax error.
   */
  private static JsonNode parseValue(String raw, String key, boolean collection) {
    if (raw.isEmpty()) {
      return YAML.getNodeFactory().nullNode();
    }
    try {
      JsonNode v = YAML.readTree(raw);
      return v == null || v.isMissingNode() ? YAML.getNodeFactory().nullNode() : v;
    } catch (IOException e) {
      if (collection) {
        String why =
            e instanceof JsonProcessingException j ? j.getOriginalMessage() : e.getMessage();
        throw new ConfigException(
            key,
            "'"
                + raw
                + "' is not valid YAML/JSON ("
                + firstLine(why)
                + ")"
                + (key.equals("plan") ? "; " + JobConfig.PLAN_HELP : ""));
      }
      return YAML.getNodeFactory().textNode(raw);
    }
  }

  private static String firstLine(String s) {
    return String.valueOf(s).lines().findFirst().orElse("").trim();
  }

  private static String keys(ObjectNode node) {
    TreeSet<String> names = new TreeSet<>();
    node.fieldNames().forEachRemaining(names::add);
    return String.join(", ", names);
  }

  /**
   * A binding error as a {@link ConfigException} naming the field: a record's own check, an unknown
   * key, or a value of the wrong type ({@code expected an integer, got '1.5'}), described from
   * {@code tree} rather than from Jackson's internals.
   */
  private static ConfigException translate(Exception e, JsonNode tree) {
    String path = "";
    JsonNode given = null;
    if (e instanceof JsonMappingException jme) {
      path =
          jme.getPath().stream()
              .map(r -> r.getFieldName() != null ? r.getFieldName() : "[" + r.getIndex() + "]")
              .collect(Collectors.joining("."))
              .replace(".[", "[");
      given = tree;
      for (JsonMappingException.Reference r : jme.getPath()) {
        given = r.getFieldName() != null ? given.path(r.getFieldName()) : given.path(r.getIndex());
      }
    }
    for (Throwable c = e; c != null; c = c.getCause()) {
      if (c instanceof ConfigException ce) {
        return ce;
      }
      if (c instanceof ConfigException.FieldError fe) {
        return new ConfigException(join(path, fe.name), fe.detail);
      }
    }
    if (e instanceof UnrecognizedPropertyException u) {
      String parent =
          path.endsWith(u.getPropertyName())
              ? path.substring(0, Math.max(0, path.length() - u.getPropertyName().length() - 1))
              : path;
      TreeSet<String> known = new TreeSet<>();
      u.getKnownPropertyIds().forEach(k -> known.add(String.valueOf(k)));
      return new ConfigException(
          join(parent, u.getPropertyName()),
          "unknown key; allowed keys"
              + (parent.isEmpty() ? "" : " under '" + parent + "'")
              + ": "
              + String.join(", ", known));
    }
    Throwable root = e;
    while (root.getCause() != null && root.getCause() != root) {
      root = root.getCause();
    }
    if (root instanceof IllegalArgumentException && root != e) {
      return new ConfigException(path.isEmpty() ? "(root)" : path, root.getMessage());
    }
    String field = path.isEmpty() ? "(root)" : path;
    for (Throwable c = e; c != null; c = c.getCause()) {
      if (c instanceof InputCoercionException ic) {
        // A number out of the field's range, e.g. 99999999999 for an int.
        return new ConfigException(
            field,
            "expected "
                + expected(ic.getTargetType(), true)
                + ", got "
                + describe(given, ic.getInputType() == null ? null : ic.getInputType().asString()));
      }
    }
    if (e instanceof MismatchedInputException m) {
      Object value = m instanceof InvalidFormatException f ? f.getValue() : null;
      return new ConfigException(
          field,
          "expected "
              + expected(m.getTargetType(), false)
              + ", got "
              + describe(given, value == null ? null : String.valueOf(value)));
    }
    return new ConfigException(field, firstLine(e.getMessage()));
  }

  /** What a field of type {@code t} takes, in words. */
  @SuppressWarnings({"unchecked", "rawtypes"})
  private static String expected(Class<?> t, boolean withRange) {
    if (t == null) {
      return "another type";
    }
    if (t == int.class || t == Integer.class) {
      return withRange
          ? "an integer in [" + Integer.MIN_VALUE + ", " + Integer.MAX_VALUE + "]"
          : "an integer";
    }
    if (t == long.class || t == Long.class) {
      return withRange
          ? "an integer in [" + Long.MIN_VALUE + ", " + Long.MAX_VALUE + "]"
          : "an integer";
    }
    if (t == boolean.class || t == Boolean.class) {
      return "a boolean (true or false)";
    }
    if (t == double.class || t == Double.class || t == float.class || t == Float.class) {
      return "a number";
    }
    if (t == String.class) {
      return "a string";
    }
    if (t.isEnum()) {
      return "one of " + Enums.allowed((Class) t);
    }
    if (Map.class.isAssignableFrom(t) || t.isRecord()) {
      return "a mapping of keys to values";
    }
    if (List.class.isAssignableFrom(t) || t.isArray()) {
      return "a list";
    }
    return "a " + t.getSimpleName();
  }

  /** The value as given: {@code 'text'}, a number or boolean as written, or its kind. */
  private static String describe(JsonNode node, String fallback) {
    if (node == null || node.isMissingNode()) {
      return fallback == null ? "another type" : "'" + fallback + "'";
    }
    if (node.isNull()) {
      return "null";
    }
    if (node.isTextual()) {
      return "'" + node.asText() + "'";
    }
    if (node.isObject()) {
      return "a mapping";
    }
    if (node.isArray()) {
      return "a list";
    }
    return node.asText();
  }

  private static String join(String a, String b) {
    return a.isEmpty() ? b : b.isEmpty() ? a : a + "." + b;
  }
}
