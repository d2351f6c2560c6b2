package dev.tokenpress.datasets;

import java.util.List;

/**
 * A generated ShapesVQA scene: its objects (row-major order), rendered pixels, object mask, caption
 * and questions.
 *
 * @param imageId {@code <split>-<index, 6 digits>}
 * @param size image side in pixels
 * @param objects objects sorted by grid cell (row-major)
 * @param rgb interleaved RGB pixels, {@code size*size*3} bytes, row-major
 * @param mask one byte per pixel: 0 = background, k = the k-th object (1-based) of {@link #objects}
 * @param caption the reference caption
 * @param questions six questions: two {@code exists} (one present, one absent), then color, count,
 *     position, caption
 */
public record Scene(
    String imageId,
    int size,
    List<SceneObject> objects,
    byte[] rgb,
    byte[] mask,
    String caption,
    List<Question> questions) {}
