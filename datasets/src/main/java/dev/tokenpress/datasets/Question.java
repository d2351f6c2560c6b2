package dev.tokenpress.datasets;

/**
 * One question about a scene.
 *
 * @param id unique id, {@code <imageId>-<n>}
 * @param kind one of {@code exists, color, count, position, caption}
 * @param question the question text (lower case)
 * @param answer the expected answer text (lower case)
 * @param sampling for the absent-object {@code exists} question (answer {@code no}), how the absent
 *     object was drawn: {@value #ADVERSARIAL} or {@value #RANDOM} (POPE's negative sampling); null
 *     for every other question
 */
public record Question(String id, String kind, String question, String answer, String sampling) {
  /** The five question kinds in a fixed order. */
  public static final java.util.List<String> KINDS =
      java.util.List.of("exists", "color", "count", "position", "caption");

  /** An absent object sharing its shape or colour with an object of the scene. */
  public static final String ADVERSARIAL = "adversarial";

  /** An absent object drawn uniformly. */
  public static final String RANDOM = "random";

  /** A question without a negative-sampling label. */
  public Question(String id, String kind, String question, String answer) {
    this(id, kind, question, answer, null);
  }
}
