package dev.tokenpress.operators.api;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.List;
import org.junit.jupiter.api.Test;

class SequenceLayoutTest {

  @Test
  void uncompressedPrefill() {
    SequenceLayout l = SequenceLayout.prefill(2, 3, 2, List.of());
    assertThat(l.originalIndices()).containsExactly(0, 1, 2, 3, 4, 5, 6);
    assertThat(l.positionIds()).containsExactly(0, 1, 2, 3, 4, 5, 6);
    assertThat(l.visualIndices()).containsExactly(-1, -1, 0, 1, 2, -1, -1);
    assertThat(l.visualRows()).containsExactly(2, 3, 4);
    assertThat(l.visualCount()).isEqualTo(3);
    assertThat(l.nextPosition()).isEqualTo(7);
    assertThat(l)
        .isEqualTo(
            SequenceLayout.of(
                new int[] {0, 1, 2, 3, 4, 5, 6},
                new int[] {0, 1, 2, 3, 4, 5, 6},
                new int[] {-1, -1, 0, 1, 2, -1, -1}));
  }

  @Test
  void repackedVisualSelection() {
    // 4 visual tokens, keep 1 and 3, re-packed: text after the image moves up by 2.
    TokenSelection sel = TokenSelection.of(4, new int[] {1, 3}, PositionMode.REPACK);
    SequenceLayout l = SequenceLayout.prefill(2, 4, 2, List.of(sel));
    assertThat(l.originalIndices()).containsExactly(0, 1, 3, 5, 6, 7);
    assertThat(l.positionIds()).containsExactly(0, 1, 2, 3, 4, 5);
    assertThat(l.visualIndices()).containsExactly(-1, -1, 1, 3, -1, -1);
    assertThat(l.nextPosition()).isEqualTo(6);
  }

  @Test
  void keepOriginalVisualSelection() {
    TokenSelection sel = TokenSelection.of(4, new int[] {1, 2}, PositionMode.KEEP_ORIGINAL);
    SequenceLayout l = SequenceLayout.prefill(2, 4, 2, List.of(sel));
    assertThat(l.originalIndices()).containsExactly(0, 1, 3, 4, 6, 7);
    assertThat(l.positionIds()).containsExactly(0, 1, 3, 4, 6, 7);
    assertThat(l.nextPosition()).isEqualTo(8);
  }

  @Test
  void chainedVisualSelections() {
    // 6 tokens: keep {0,2,3,5} keeping positions, then keep the 2nd and 4th of those re-packed.
    TokenSelection a = TokenSelection.of(6, new int[] {0, 2, 3, 5}, PositionMode.KEEP_ORIGINAL);
    TokenSelection b = TokenSelection.of(4, new int[] {1, 3}, PositionMode.REPACK);
    SequenceLayout l = SequenceLayout.prefill(1, 6, 1, List.of(a, b));
    assertThat(l.visualIndices()).containsExactly(-1, 2, 5, -1);
    assertThat(l.originalIndices()).containsExactly(0, 3, 6, 7);
    assertThat(l.positionIds()).containsExactly(0, 1, 2, 3);
    // The other order: re-pack first, then keep positions.
    TokenSelection c = TokenSelection.of(6, new int[] {0, 2, 3, 5}, PositionMode.REPACK);
    TokenSelection d = TokenSelection.of(4, new int[] {1, 3}, PositionMode.KEEP_ORIGINAL);
    SequenceLayout m = SequenceLayout.prefill(1, 6, 1, List.of(c, d));
    assertThat(m.positionIds()).containsExactly(0, 2, 4, 5);
    assertThat(m.nextPosition()).isEqualTo(6);
    assertThatThrownBy(() -> SequenceLayout.prefill(1, 6, 1, List.of(b)))
        .hasMessage("visual selection 0 is over 4 tokens, but 6 visual tokens remain");
  }

  @Test
  void applyKeepsOrRepacksPositions() {
    SequenceLayout l = SequenceLayout.prefill(2, 4, 2, List.of());
    TokenSelection keep =
        TokenSelection.of(8, new int[] {0, 1, 3, 5, 6, 7}, PositionMode.KEEP_ORIGINAL);
    SequenceLayout k = l.apply(keep);
    assertThat(k.positionIds()).containsExactly(0, 1, 3, 5, 6, 7);
    assertThat(k.originalIndices()).containsExactly(0, 1, 3, 5, 6, 7);
    assertThat(k.visualIndices()).containsExactly(-1, -1, 1, 3, -1, -1);
    assertThat(k.nextPosition()).isEqualTo(8);
    SequenceLayout r =
        l.apply(TokenSelection.of(8, new int[] {0, 1, 3, 5, 6, 7}, PositionMode.REPACK));
    assertThat(r.positionIds()).containsExactly(0, 1, 2, 3, 4, 5);
    assertThat(r.nextPosition()).isEqualTo(6);
    assertThat(l.apply(TokenSelection.keepAll(8))).isEqualTo(l);
    assertThatThrownBy(() -> l.apply(TokenSelection.keepAll(3)))
        .hasMessage("selection is over 3 rows, layout has 8");
  }

  @Test
  void queryRows() {
    SequenceLayout l = SequenceLayout.prefill(2, 3, 2, List.of());
    assertThat(QueryRows.LAST_PROMPT_TOKEN.resolve(l)).containsExactly(6);
    assertThat(QueryRows.TEXT_AFTER_VISUAL.resolve(l)).containsExactly(5, 6);
    SequenceLayout textOnly = SequenceLayout.prefill(2, 0, 2, List.of());
    assertThat(QueryRows.TEXT_AFTER_VISUAL.resolve(textOnly)).isEmpty();
    SequenceLayout empty = SequenceLayout.prefill(0, 0, 0, List.of());
    assertThatThrownBy(() -> QueryRows.LAST_PROMPT_TOKEN.resolve(empty))
        .hasMessageContaining("empty sequence");
  }

  @Test
  void ofValidates() {
    assertThatThrownBy(() -> SequenceLayout.of(new int[] {0, 1}, new int[] {0}, new int[] {-1, -1}))
        .hasMessageContaining("differ in length");
    assertThatThrownBy(
            () -> SequenceLayout.of(new int[] {1, 0}, new int[] {0, 1}, new int[] {-1, -1}))
        .hasMessageContaining("strictly ascending");
    assertThatThrownBy(
            () -> SequenceLayout.of(new int[] {0, 1}, new int[] {0, -1}, new int[] {-1, -1}))
        .hasMessage("positionId[1] must be >= 0, got -1");
    assertThatThrownBy(
            () -> SequenceLayout.of(new int[] {0, 1}, new int[] {0, 1}, new int[] {-2, -1}))
        .hasMessage("visualIndex[0] must be >= -1, got -2");
  }

  @Test
  void keptMaps() {
    SequenceLayout l =
        SequenceLayout.prefill(
            2, 6, 2, List.of(TokenSelection.of(6, new int[] {0, 2, 3, 5}, PositionMode.REPACK)));
    TokenSelection sel =
        TokenSelection.of(8, new int[] {0, 1, 3, 6, 7}, PositionMode.KEEP_ORIGINAL);
    KeptMap m = KeptMap.ofPrefill("fastv", 1, l, sel);
    assertThat(m.original()).containsExactly(0, 1, 4, 8, 9);
    assertThat(m.toJson())
        .isEqualTo(
            "{\"operator\":\"fastv\",\"hook\":\"prefill_after\",\"layer\":1,"
                + "\"input_count\":8,\"positions\":\"keep_original\",\"kept\":[0,1,3,6,7],\"original\":[0,1,4,8,9]}");
    assertThat(m).isEqualTo(KeptMap.ofPrefill("fastv", 1, l, sel));
    assertThatThrownBy(() -> KeptMap.ofPrefill("fastv", 1, l, TokenSelection.keepAll(3)))
        .hasMessage("selection is over 3 rows, input has 8");
  }
}
