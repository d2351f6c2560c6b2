package dev.tokenpress.datasets;

/**
 * One question about a scene.
 *
 * @param id unique id, {@code <imageId>-<n>}
 * @param kind one of {@code exists, color, count, position, caption}
 * @param question the question text (lower case)
 * @param answer the expected answer text (lower case)
 */
public record Question(String id, String kind, String question, String answer) {
  /** The five question kinds in a fixed order. */
  public static final java.util.List<String> KINDS =
      java.util.List.of("exists", "color", "count", "position", "caption");
}
