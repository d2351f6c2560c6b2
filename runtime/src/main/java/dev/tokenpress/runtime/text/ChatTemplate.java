package dev.tokenpress.runtime.text;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * A Hugging Face chat template ({@code tokenizer_config.json}'s {@code chat_template}, Jinja)
 * rendered in Java, without Python. Supports the Jinja subset chat templates use, with Hugging
 * Face's environment settings ({@code trim_blocks}, {@code lstrip_blocks}, loop controls):
 *
 * <ul>
 *   <li>{@code {{ expr }}}, {@code {% if/elif/else/endif %}}, {@code {% for x in xs [if c] %}}
 *       (with {@code loop.index/index0/first/last/length/revindex}, tuple unpacking, {@code else}),
 *       {@code {% set x = e %}} (also {@code ns.attr} on a {@code namespace()}), {@code {% break
 *       %}}, {@code {% continue %}}, {@code {% generation %}} (ignored), {@code {# comments #}},
 *       and the {@code -} whitespace control on every tag;
 *   <li>literals, names, {@code .attr}, {@code [key]}, slices {@code [a:b]}, {@code + - * / % ~},
 *       comparisons, {@code in}, {@code not in}, {@code and/or/not}, {@code x if c else y}, tests
 *       ({@code is [not]
 *       defined/undefined/none/string/number/mapping/iterable/sequence/true/false}), filters
 *       ({@code trim upper lower length count first last join list default tojson capitalize title
 *       selectattr rejectattr map string int}), string methods ({@code strip lstrip rstrip upper
 *       lower startswith endswith split replace title}), dict {@code get/items/keys/values}, {@code
 *       range()}, {@code namespace()}, {@code raise_exception()}.
 * </ul>
 *
 * Anything else fails at parse time with the offending position, never silently. Immutable and
 * thread-safe once parsed.
 */
public final class ChatTemplate {
  private final String source;
  private final List<Node> body;

  private ChatTemplate(String source, List<Node> body) {
    this.source = source;
    this.body = body;
  }

  /** Parses {@code template}; throws {@link IllegalArgumentException} on unsupported syntax. */
  public static ChatTemplate parse(String template) {
    if (template == null || template.isEmpty()) {
      throw new IllegalArgumentException("chat template is empty");
    }
    Parser p = new Parser(template, Lexer.tokens(template));
    List<Node> body = p.block(java.util.Set.of());
    return new ChatTemplate(template, body);
  }

  public String source() {
    return source;
  }

  /** A user/assistant/system turn; {@code content} is a String or a list of typed parts. */
  public record Message(String role, Object content) {
    /** A user turn with one image followed by text, as LLaVA processors build it. */
    public static Message userWithImage(String text) {
      return new Message(
          "user", List.of(Map.of("type", "image"), Map.of("type", "text", "text", text)));
    }

    Map<String, Object> asMap() {
      Map<String, Object> m = new LinkedHashMap<>();
      m.put("role", role);
      m.put("content", content);
      return m;
    }
  }

  /**
   * Renders the conversation. {@code variables} adds names such as {@code bos_token}, {@code
   * eos_token} (may be empty).
   */
  public String render(
      List<Message> messages, boolean addGenerationPrompt, Map<String, Object> variables) {
    Map<String, Object> scope = new LinkedHashMap<>(variables);
    List<Object> ms = new ArrayList<>();
    for (Message m : messages) {
      ms.add(m.asMap());
    }
    scope.put("messages", ms);
    scope.put("add_generation_prompt", addGenerationPrompt);
    StringBuilder out = new StringBuilder();
    try {
      Interp.exec(body, new Interp.Scope(scope), out);
    } catch (Interp.Flow f) {
      throw new IllegalArgumentException("break/continue outside a loop in chat template");
    }
    return out.toString();
  }

  // ================================================================================ lexer ===

  /** Raw pieces of the template: text, {{ expr }}, {% stmt %}. Comments are dropped. */
  static final class Piece {
    final char kind; // 'T' text, 'E' expression, 'S' statement
    final String text;
    final int pos;

    Piece(char kind, String text, int pos) {
      this.kind = kind;
      this.text = text;
      this.pos = pos;
    }
  }

  static final class Lexer {
    static List<Piece> tokens(String s) {
      List<Piece> out = new ArrayList<>();
      int i = 0;
      boolean trimNextLeading = false;
      boolean lastWasBlock = false;
      while (i < s.length()) {
        int open = nextOpen(s, i);
        String text = open < 0 ? s.substring(i) : s.substring(i, open);
        if (trimNextLeading) {
          text = stripLeading(text);
        } else if (lastWasBlock && text.startsWith("\n")) {
          text = text.substring(1); // trim_blocks
        } else if (lastWasBlock && text.startsWith("\r\n")) {
          text = text.substring(2);
        }
        if (open < 0) {
          if (!text.isEmpty()) {
            out.add(new Piece('T', text, i));
          }
          break;
        }
        char kind = s.charAt(open + 1);
        String close = kind == '{' ? "}}" : kind == '%' ? "%}" : "#}";
        int end = s.indexOf(close, open + 2);
        if (end < 0) {
          throw new IllegalArgumentException(
              "unclosed tag at offset " + open + " of the chat template");
        }
        String inner = s.substring(open + 2, end);
        boolean trimBefore = inner.startsWith("-");
        boolean trimAfter = inner.endsWith("-") && inner.length() > (trimBefore ? 1 : 0);
        if (trimBefore) {
          text = stripTrailing(text);
        } else if (kind == '%' || kind == '#') {
          text = lstripBlock(text, s, open); // lstrip_blocks
        }
        if (!text.isEmpty()) {
          out.add(new Piece('T', text, i));
        }
        inner = inner.substring(trimBefore ? 1 : 0, inner.length() - (trimAfter ? 1 : 0)).trim();
        if (kind == '{') {
          out.add(new Piece('E', inner, open));
        } else if (kind == '%') {
          out.add(new Piece('S', inner, open));
        }
        trimNextLeading = trimAfter;
        lastWasBlock = kind == '%' || kind == '#';
        i = end + 2;
      }
      return out;
    }

    private static int nextOpen(String s, int from) {
      for (int i = from; i < s.length() - 1; i++) {
        if (s.charAt(i) == '{') {
          char c = s.charAt(i + 1);
          if (c == '{' || c == '%' || c == '#') {
            return i;
          }
        }
      }
      return -1;
    }

    private static String stripLeading(String t) {
      int k = 0;
      while (k < t.length() && Character.isWhitespace(t.charAt(k))) {
        k++;
      }
      return t.substring(k);
    }

    private static String stripTrailing(String t) {
      int k = t.length();
      while (k > 0 && Character.isWhitespace(t.charAt(k - 1))) {
        k--;
      }
      return t.substring(0, k);
    }

    /**
     * lstrip_blocks: removes the spaces/tabs before a block tag when only they separate it from the
     * start of its line in the source.
     */
    private static String lstripBlock(String t, String src, int tagAt) {
      int ws = 0;
      while (ws < t.length()
          && (t.charAt(t.length() - 1 - ws) == ' ' || t.charAt(t.length() - 1 - ws) == '\t')) {
        ws++;
      }
      int before = tagAt - ws - 1;
      if (before < 0 || src.charAt(before) == '\n') {
        return t.substring(0, t.length() - ws);
      }
      return t;
    }
  }

  // ================================================================================ AST =====

  interface Node {}

  record Text(String text) implements Node {}

  record Output(Expr expr) implements Node {}

  record If(List<Expr> conds, List<List<Node>> branches, List<Node> otherwise) implements Node {}

  record For(
      List<String> targets, Expr iterable, Expr filter, List<Node> body, List<Node> otherwise)
      implements Node {}

  record SetVar(String name, String attr, Expr value) implements Node {}

  record Control(boolean isBreak) implements Node {}

  interface Expr {}

  record Lit(Object value) implements Expr {}

  record Name(String name) implements Expr {}

  record Attr(Expr target, String name) implements Expr {}

  record Index(Expr target, Expr index) implements Expr {}

  record SliceE(Expr target, Expr from, Expr to) implements Expr {}

  record Call(Expr fn, List<Expr> args, Map<String, Expr> kwargs) implements Expr {}

  record Filter(Expr target, String name, List<Expr> args) implements Expr {}

  record Test(Expr target, String name, boolean negate, List<Expr> args) implements Expr {}

  record Bin(String op, Expr a, Expr b) implements Expr {}

  record Not(Expr a) implements Expr {}

  record Neg(Expr a) implements Expr {}

  record Cond(Expr cond, Expr then, Expr otherwise) implements Expr {}

  record ListE(List<Expr> items) implements Expr {}

  record DictE(List<Expr> keys, List<Expr> values) implements Expr {}

  // ================================================================================ parser ==

  static final class Parser {
    private final String src;
    private final List<Piece> pieces;
    private int at;

    Parser(String src, List<Piece> pieces) {
      this.src = src;
      this.pieces = pieces;
    }

    /** Parses nodes until a statement whose first word is in {@code enders} (left unconsumed). */
    List<Node> block(java.util.Set<String> enders) {
      List<Node> nodes = new ArrayList<>();
      while (at < pieces.size()) {
        Piece p = pieces.get(at);
        if (p.kind == 'T') {
          nodes.add(new Text(p.text));
          at++;
        } else if (p.kind == 'E') {
          nodes.add(new Output(expr(p)));
          at++;
        } else {
          String word = firstWord(p.text);
          if (enders.contains(word)) {
            return nodes;
          }
          at++;
          nodes.add(statement(p, word));
        }
      }
      if (!enders.isEmpty()) {
        throw new IllegalArgumentException(
            "chat template ends inside a block; expected one of " + enders);
      }
      return nodes;
    }

    private Node statement(Piece p, String word) {
      String rest = p.text.substring(word.length()).trim();
      switch (word) {
        case "if":
          {
            List<Expr> conds = new ArrayList<>();
            List<List<Node>> branches = new ArrayList<>();
            conds.add(new ExprParser(rest, p.pos, src).parseAll());
            List<Node> otherwise = List.of();
            java.util.Set<String> enders = java.util.Set.of("elif", "else", "endif");
            branches.add(block(enders));
            while (true) {
              Piece e = pieces.get(at++);
              String w = firstWord(e.text);
              if (w.equals("elif")) {
                conds.add(new ExprParser(e.text.substring(4).trim(), e.pos, src).parseAll());
                branches.add(block(enders));
              } else if (w.equals("else")) {
                otherwise = block(java.util.Set.of("endif"));
                at++;
                break;
              } else {
                break;
              }
            }
            return new If(conds, branches, otherwise);
          }
        case "for":
          {
            int in = indexOfWord(rest, "in");
            if (in < 0) {
              throw error(p, "for without 'in'");
            }
            List<String> targets = new ArrayList<>();
            for (String t : rest.substring(0, in).split(",")) {
              targets.add(t.trim());
            }
            String iterSrc = rest.substring(in + 2).trim();
            Expr filter = null;
            int ifAt = indexOfWord(iterSrc, "if");
            if (ifAt >= 0 && !containsWord(iterSrc.substring(ifAt), "else")) {
              filter = new ExprParser(iterSrc.substring(ifAt + 2), p.pos, src).parseAll();
              iterSrc = iterSrc.substring(0, ifAt);
            }
            Expr iterable = new ExprParser(iterSrc, p.pos, src).parseAll();
            List<Node> body = block(java.util.Set.of("else", "endfor"));
            List<Node> otherwise = List.of();
            Piece e = pieces.get(at++);
            if (firstWord(e.text).equals("else")) {
              otherwise = block(java.util.Set.of("endfor"));
              at++;
            }
            return new For(targets, iterable, filter, body, otherwise);
          }
        case "set":
          {
            int eq = rest.indexOf('=');
            if (eq < 0) {
              throw error(p, "block set is not supported");
            }
            String target = rest.substring(0, eq).trim();
            Expr value = new ExprParser(rest.substring(eq + 1), p.pos, src).parseAll();
            int dot = target.indexOf('.');
            return dot < 0
                ? new SetVar(target, null, value)
                : new SetVar(target.substring(0, dot), target.substring(dot + 1), value);
          }
        case "break":
          return new Control(true);
        case "continue":
          return new Control(false);
        case "generation":
          {
            List<Node> body = block(java.util.Set.of("endgeneration"));
            at++;
            return new If(List.of(new Lit(true)), List.of(body), List.of());
          }
        default:
          throw error(p, "unsupported statement '" + word + "'");
      }
    }

    private Expr expr(Piece p) {
      return new ExprParser(p.text, p.pos, src).parseAll();
    }

    private IllegalArgumentException error(Piece p, String msg) {
      return new IllegalArgumentException(
          msg + " at offset " + p.pos + " of the chat template: {% " + p.text + " %}");
    }

    private static String firstWord(String s) {
      int i = 0;
      while (i < s.length() && (Character.isLetterOrDigit(s.charAt(i)) || s.charAt(i) == '_')) {
        i++;
      }
      return s.substring(0, i);
    }

    /** Index of {@code word} as a whole word outside string literals, or -1. */
    static int indexOfWord(String s, String word) {
      char quote = 0;
      for (int i = 0; i + word.length() <= s.length(); i++) {
        char c = s.charAt(i);
        if (quote != 0) {
          if (c == quote) {
            quote = 0;
          }
          continue;
        }
        if (c == '\'' || c == '"') {
          quote = c;
          continue;
        }
        if (s.startsWith(word, i)
            && (i == 0 || !isIdent(s.charAt(i - 1)))
            && (i + word.length() == s.length() || !isIdent(s.charAt(i + word.length())))) {
          return i;
        }
      }
      return -1;
    }

    private static boolean containsWord(String s, String word) {
      return indexOfWord(s, word) >= 0;
    }

    private static boolean isIdent(char c) {
      return Character.isLetterOrDigit(c) || c == '_';
    }
  }

  /** Recursive-descent parser of one Jinja expression. */
  static final class ExprParser {
    private final String s;
    private final int base;
    private final String src;
    private int i;

    ExprParser(String s, int base, String src) {
      this.s = s;
      this.base = base;
      this.src = src;
    }

    Expr parseAll() {
      Expr e = ternary();
      skipWs();
      if (i != s.length()) {
        throw error("unexpected '" + s.substring(i) + "'");
      }
      return e;
    }

    private Expr ternary() {
      Expr e = or();
      if (peekWord("if")) {
        i += 2;
        Expr cond = or();
        Expr otherwise = new Lit(Interp.UNDEFINED);
        if (peekWord("else")) {
          i += 4;
          otherwise = ternary();
        }
        return new Cond(cond, e, otherwise);
      }
      return e;
    }

    private Expr or() {
      Expr e = and();
      while (peekWord("or")) {
        i += 2;
        e = new Bin("or", e, and());
      }
      return e;
    }

    private Expr and() {
      Expr e = not();
      while (peekWord("and")) {
        i += 3;
        e = new Bin("and", e, not());
      }
      return e;
    }

    private Expr not() {
      if (peekWord("not")) {
        i += 3;
        return new Not(not());
      }
      return comparison();
    }

    private Expr comparison() {
      Expr e = concat();
      while (true) {
        skipWs();
        String op = null;
        for (String c : new String[] {"==", "!=", "<=", ">=", "<", ">"}) {
          if (s.startsWith(c, i)) {
            op = c;
            break;
          }
        }
        if (op != null) {
          i += op.length();
          e = new Bin(op, e, concat());
        } else if (peekWord("in")) {
          i += 2;
          e = new Bin("in", e, concat());
        } else if (peekWord("not") && followedByWord("not", "in")) {
          skipWs();
          i += 3;
          skipWs();
          i += 2;
          e = new Not(new Bin("in", e, concat()));
        } else if (peekWord("is")) {
          i += 2;
          boolean negate = false;
          if (peekWord("not")) {
            i += 3;
            negate = true;
          }
          String name = ident();
          List<Expr> args = new ArrayList<>();
          skipWs();
          if (i < s.length() && s.charAt(i) == '(') {
            args = callArgs(null);
          } else if (!atEnd() && !peekOperatorOrKeyword()) {
            args.add(concat());
          }
          e = new Test(e, name, negate, args);
        } else {
          return e;
        }
      }
    }

    private Expr concat() {
      Expr e = additive();
      while (true) {
        skipWs();
        if (i < s.length() && s.charAt(i) == '~') {
          i++;
          e = new Bin("~", e, additive());
        } else {
          return e;
        }
      }
    }

    private Expr additive() {
      Expr e = multiplicative();
      while (true) {
        skipWs();
        if (i < s.length() && (s.charAt(i) == '+' || s.charAt(i) == '-')) {
          String op = String.valueOf(s.charAt(i++));
          e = new Bin(op, e, multiplicative());
        } else {
          return e;
        }
      }
    }

    private Expr multiplicative() {
      Expr e = unary();
      while (true) {
        skipWs();
        if (i < s.length() && (s.charAt(i) == '*' || s.charAt(i) == '/' || s.charAt(i) == '%')) {
          String op = String.valueOf(s.charAt(i++));
          if (op.equals("/") && i < s.length() && s.charAt(i) == '/') {
            i++;
            op = "//";
          }
          e = new Bin(op, e, unary());
        } else {
          return e;
        }
      }
    }

    private Expr unary() {
      skipWs();
      if (i < s.length() && s.charAt(i) == '-') {
        i++;
        return new Neg(unary());
      }
      return postfix(primary());
    }

    private Expr postfix(Expr e) {
      while (true) {
        skipWs();
        if (i >= s.length()) {
          return e;
        }
        char c = s.charAt(i);
        if (c == '.') {
          i++;
          e = new Attr(e, ident());
        } else if (c == '[') {
          i++;
          skipWs();
          Expr from = null;
          if (s.charAt(i) != ':') {
            from = ternary();
          }
          skipWs();
          if (s.charAt(i) == ':') {
            i++;
            skipWs();
            Expr to = s.charAt(i) == ']' ? null : ternary();
            expect(']');
            e = new SliceE(e, from, to);
          } else {
            expect(']');
            e = new Index(e, from);
          }
        } else if (c == '(') {
          Map<String, Expr> kw = new LinkedHashMap<>();
          List<Expr> args = callArgs(kw);
          e = new Call(e, args, kw);
        } else if (c == '|') {
          i++;
          String name = ident();
          List<Expr> args = new ArrayList<>();
          skipWs();
          if (i < s.length() && s.charAt(i) == '(') {
            args = callArgs(null);
          }
          e = new Filter(e, name, args);
        } else {
          return e;
        }
      }
    }

    private List<Expr> callArgs(Map<String, Expr> kwargs) {
      expect('(');
      List<Expr> args = new ArrayList<>();
      skipWs();
      if (s.charAt(i) == ')') {
        i++;
        return args;
      }
      while (true) {
        skipWs();
        int save = i;
        if (kwargs != null && Character.isLetter(s.charAt(i))) {
          String name = ident();
          skipWs();
          if (i < s.length()
              && s.charAt(i) == '='
              && (i + 1 >= s.length() || s.charAt(i + 1) != '=')) {
            i++;
            kwargs.put(name, ternary());
          } else {
            i = save;
            args.add(ternary());
          }
        } else {
          args.add(ternary());
        }
        skipWs();
        if (s.charAt(i) == ',') {
          i++;
          continue;
        }
        expect(')');
        return args;
      }
    }

    private Expr primary() {
      skipWs();
      if (i >= s.length()) {
        throw error("expression ends early");
      }
      char c = s.charAt(i);
      if (c == '\'' || c == '"') {
        return new Lit(string(c));
      }
      if (Character.isDigit(c)) {
        int st = i;
        while (i < s.length() && (Character.isDigit(s.charAt(i)) || s.charAt(i) == '.')) {
          i++;
        }
        String num = s.substring(st, i);
        return new Lit(
            num.contains(".") ? (Object) Double.parseDouble(num) : (Object) Long.parseLong(num));
      }
      if (c == '(') {
        i++;
        Expr e = ternary();
        skipWs();
        if (s.charAt(i) == ',') {
          List<Expr> items = new ArrayList<>(List.of(e));
          while (s.charAt(i) == ',') {
            i++;
            skipWs();
            if (s.charAt(i) == ')') {
              break;
            }
            items.add(ternary());
            skipWs();
          }
          expect(')');
          return new ListE(items);
        }
        expect(')');
        return e;
      }
      if (c == '[') {
        i++;
        List<Expr> items = new ArrayList<>();
        skipWs();
        while (s.charAt(i) != ']') {
          items.add(ternary());
          skipWs();
          if (s.charAt(i) == ',') {
            i++;
            skipWs();
          }
        }
        i++;
        return new ListE(items);
      }
      if (c == '{') {
        i++;
        List<Expr> keys = new ArrayList<>();
        List<Expr> values = new ArrayList<>();
        skipWs();
        while (s.charAt(i) != '}') {
          keys.add(ternary());
          expect(':');
          values.add(ternary());
          skipWs();
          if (s.charAt(i) == ',') {
            i++;
            skipWs();
          }
        }
        i++;
        return new DictE(keys, values);
      }
      String name = ident();
      switch (name) {
        case "true":
        case "True":
          return new Lit(true);
        case "false":
        case "False":
          return new Lit(false);
        case "none":
        case "None":
          return new Lit(null);
        default:
          return new Name(name);
      }
    }

    private String string(char quote) {
      StringBuilder b = new StringBuilder();
      i++;
      while (i < s.length() && s.charAt(i) != quote) {
        char c = s.charAt(i++);
        if (c == '\\' && i < s.length()) {
          char n = s.charAt(i++);
          switch (n) {
            case 'n':
              b.append('\n');
              break;
            case 't':
              b.append('\t');
              break;
            case 'r':
              b.append('\r');
              break;
            case 'u':
              b.append((char) Integer.parseInt(s.substring(i, i + 4), 16));
              i += 4;
              break;
            case 'x':
              b.append((char) Integer.parseInt(s.substring(i, i + 2), 16));
              i += 2;
              break;
            default:
              b.append(n);
          }
        } else {
          b.append(c);
        }
      }
      if (i >= s.length()) {
        throw error("unterminated string");
      }
      i++;
      return b.toString();
    }

    private String ident() {
      skipWs();
      int st = i;
      while (i < s.length() && (Character.isLetterOrDigit(s.charAt(i)) || s.charAt(i) == '_')) {
        i++;
      }
      if (st == i) {
        throw error("expected a name");
      }
      return s.substring(st, i);
    }

    private boolean peekWord(String w) {
      skipWs();
      return s.startsWith(w, i)
          && (i + w.length() == s.length()
              || !Character.isLetterOrDigit(s.charAt(i + w.length()))
                  && s.charAt(i + w.length()) != '_');
    }

    private boolean followedByWord(String first, String second) {
      int j = i + first.length();
      while (j < s.length() && s.charAt(j) == ' ') {
        j++;
      }
      return s.startsWith(second, j)
          && (j + second.length() == s.length()
              || !Character.isLetterOrDigit(s.charAt(j + second.length())));
    }

    private boolean atEnd() {
      skipWs();
      return i >= s.length();
    }

    private boolean peekOperatorOrKeyword() {
      char c = s.charAt(i);
      if ("=!<>)],:|+-*/%~".indexOf(c) >= 0) {
        return true;
      }
      return peekWord("and") || peekWord("or") || peekWord("else") || peekWord("if");
    }

    private void expect(char c) {
      skipWs();
      if (i >= s.length() || s.charAt(i) != c) {
        throw error("expected '" + c + "'");
      }
      i++;
    }

    private void skipWs() {
      while (i < s.length() && Character.isWhitespace(s.charAt(i))) {
        i++;
      }
    }

    private IllegalArgumentException error(String msg) {
      return new IllegalArgumentException(
          "chat template: " + msg + " in expression '" + s + "' (tag at offset " + base + ")");
    }
  }

  // =========================================================================== interpreter ==

  static final class Interp {
    static final Object UNDEFINED =
        new Object() {
          @Override
          public String toString() {
            return "";
          }
        };

    static final class Flow extends RuntimeException {
      private static final long serialVersionUID = 1L;
      final boolean isBreak;

      Flow(boolean isBreak) {
        super(null, null, false, false);
        this.isBreak = isBreak;
      }
    }

    static final class Scope {
      final Map<String, Object> vars;
      final Scope parent;

      Scope(Map<String, Object> vars) {
        this(vars, null);
      }

      Scope(Map<String, Object> vars, Scope parent) {
        this.vars = vars;
        this.parent = parent;
      }

      Object get(String name) {
        for (Scope s = this; s != null; s = s.parent) {
          if (s.vars.containsKey(name)) {
            return s.vars.get(name);
          }
        }
        return UNDEFINED;
      }
    }

    /** A {@code namespace()} object: attributes settable from inside loops. */
    static final class Namespace extends LinkedHashMap<String, Object> {
      private static final long serialVersionUID = 1L;
    }

    static void exec(List<Node> nodes, Scope scope, StringBuilder out) {
      for (Node n : nodes) {
        if (n instanceof Text t) {
          out.append(t.text());
        } else if (n instanceof Output o) {
          out.append(str(eval(o.expr(), scope)));
        } else if (n instanceof If f) {
          boolean done = false;
          for (int k = 0; k < f.conds().size(); k++) {
            if (truthy(eval(f.conds().get(k), scope))) {
              exec(f.branches().get(k), scope, out);
              done = true;
              break;
            }
          }
          if (!done) {
            exec(f.otherwise(), scope, out);
          }
        } else if (n instanceof For f) {
          execFor(f, scope, out);
        } else if (n instanceof SetVar sv) {
          Object v = eval(sv.value(), scope);
          if (sv.attr() == null) {
            scope.vars.put(sv.name(), v);
          } else {
            Object ns = scope.get(sv.name());
            if (!(ns instanceof Namespace m)) {
              throw new IllegalArgumentException(
                  "chat template sets "
                      + sv.name()
                      + "."
                      + sv.attr()
                      + " but "
                      + sv.name()
                      + " is not a namespace");
            }
            m.put(sv.attr(), v);
          }
        } else if (n instanceof Control c) {
          throw new Flow(c.isBreak());
        }
      }
    }

    private static void execFor(For f, Scope scope, StringBuilder out) {
      List<Object> items = new ArrayList<>();
      for (Object item : iterate(eval(f.iterable(), scope))) {
        if (f.filter() != null) {
          Scope probe = new Scope(new LinkedHashMap<>(), scope);
          bind(f.targets(), item, probe);
          if (!truthy(eval(f.filter(), probe))) {
            continue;
          }
        }
        items.add(item);
      }
      if (items.isEmpty()) {
        exec(f.otherwise(), scope, out);
        return;
      }
      for (int k = 0; k < items.size(); k++) {
        Map<String, Object> vars = new LinkedHashMap<>();
        Map<String, Object> loop = new LinkedHashMap<>();
        loop.put("index", (long) k + 1);
        loop.put("index0", (long) k);
        loop.put("first", k == 0);
        loop.put("last", k == items.size() - 1);
        loop.put("length", (long) items.size());
        loop.put("revindex", (long) (items.size() - k));
        loop.put("revindex0", (long) (items.size() - k - 1));
        loop.put("previtem", k > 0 ? items.get(k - 1) : UNDEFINED);
        loop.put("nextitem", k + 1 < items.size() ? items.get(k + 1) : UNDEFINED);
        vars.put("loop", loop);
        Scope inner = new Scope(vars, scope);
        bind(f.targets(), items.get(k), inner);
        try {
          exec(f.body(), inner, out);
        } catch (Flow flow) {
          if (flow.isBreak) {
            break;
          }
        }
      }
    }

    private static void bind(List<String> targets, Object item, Scope scope) {
      if (targets.size() == 1) {
        scope.vars.put(targets.get(0), item);
        return;
      }
      List<Object> parts = iterate(item);
      if (parts.size() != targets.size()) {
        throw new IllegalArgumentException(
            "chat template unpacks " + parts.size() + " values into " + targets);
      }
      for (int k = 0; k < targets.size(); k++) {
        scope.vars.put(targets.get(k), parts.get(k));
      }
    }

    @SuppressWarnings("unchecked")
    static List<Object> iterate(Object v) {
      if (v instanceof List<?> l) {
        return (List<Object>) l;
      }
      if (v instanceof Map<?, ?> m) {
        return new ArrayList<>(m.keySet());
      }
      if (v instanceof String s) {
        List<Object> out = new ArrayList<>();
        s.codePoints().forEach(cp -> out.add(new String(Character.toChars(cp))));
        return out;
      }
      if (v == UNDEFINED || v == null) {
        return List.of();
      }
      throw new IllegalArgumentException("chat template iterates over a " + typeName(v));
    }

    static Object eval(Expr e, Scope scope) {
      if (e instanceof Lit l) {
        return l.value();
      }
      if (e instanceof Name n) {
        return scope.get(n.name());
      }
      if (e instanceof Attr a) {
        Object t = eval(a.target(), scope);
        if (t instanceof Map<?, ?> m) {
          return m.containsKey(a.name()) ? m.get(a.name()) : (Object) new BoundMethod(t, a.name());
        }
        return new BoundMethod(t, a.name());
      }
      if (e instanceof Index ix) {
        return index(eval(ix.target(), scope), eval(ix.index(), scope));
      }
      if (e instanceof SliceE sl) {
        Object t = eval(sl.target(), scope);
        List<Object> items = iterate(t);
        int n = items.size();
        int from = sl.from() == null ? 0 : clampIndex(toLong(eval(sl.from(), scope)), n);
        int to = sl.to() == null ? n : clampIndex(toLong(eval(sl.to(), scope)), n);
        List<Object> out = to > from ? new ArrayList<>(items.subList(from, to)) : new ArrayList<>();
        if (t instanceof String) {
          StringBuilder b = new StringBuilder();
          out.forEach(b::append);
          return b.toString();
        }
        return out;
      }
      if (e instanceof Call c) {
        return call(c, scope);
      }
      if (e instanceof Filter f) {
        List<Object> args = new ArrayList<>();
        for (Expr a : f.args()) {
          args.add(eval(a, scope));
        }
        return filter(f.name(), eval(f.target(), scope), args);
      }
      if (e instanceof Test t) {
        List<Object> args = new ArrayList<>();
        for (Expr a : t.args()) {
          args.add(eval(a, scope));
        }
        boolean r = test(t.name(), eval(t.target(), scope), args);
        return t.negate() != r;
      }
      if (e instanceof Not n) {
        return !truthy(eval(n.a(), scope));
      }
      if (e instanceof Neg n) {
        Object v = eval(n.a(), scope);
        return v instanceof Double d ? (Object) (-d) : (Object) (-toLong(v));
      }
      if (e instanceof Cond c) {
        return truthy(eval(c.cond(), scope)) ? eval(c.then(), scope) : eval(c.otherwise(), scope);
      }
      if (e instanceof ListE l) {
        List<Object> out = new ArrayList<>();
        for (Expr x : l.items()) {
          out.add(eval(x, scope));
        }
        return out;
      }
      if (e instanceof DictE d) {
        Map<String, Object> m = new LinkedHashMap<>();
        for (int k = 0; k < d.keys().size(); k++) {
          m.put(str(eval(d.keys().get(k), scope)), eval(d.values().get(k), scope));
        }
        return m;
      }
      if (e instanceof Bin b) {
        return binary(b, scope);
      }
      throw new IllegalStateException("unknown expression " + e);
    }

    private static int clampIndex(long v, int n) {
      long k = v < 0 ? n + v : v;
      return (int) Math.max(0, Math.min(n, k));
    }

    private record BoundMethod(Object target, String name) {}

    private static Object call(Call c, Scope scope) {
      List<Object> args = new ArrayList<>();
      for (Expr a : c.args()) {
        args.add(eval(a, scope));
      }
      if (c.fn() instanceof Name n) {
        switch (n.name()) {
          case "raise_exception":
            throw new IllegalArgumentException(
                "chat template raised: " + (args.isEmpty() ? "" : str(args.get(0))));
          case "range":
            {
              long from = args.size() > 1 ? toLong(args.get(0)) : 0;
              long to = toLong(args.get(args.size() > 1 ? 1 : 0));
              List<Object> out = new ArrayList<>();
              for (long k = from; k < to; k++) {
                out.add(k);
              }
              return out;
            }
          case "namespace":
            {
              Namespace ns = new Namespace();
              for (Map.Entry<String, Expr> kw : c.kwargs().entrySet()) {
                ns.put(kw.getKey(), eval(kw.getValue(), scope));
              }
              return ns;
            }
          default:
            break;
        }
      }
      Object fn = eval(c.fn(), scope);
      if (fn instanceof BoundMethod m) {
        return method(m.target(), m.name(), args);
      }
      throw new IllegalArgumentException(
          "chat template calls something that is not a function: " + c.fn());
    }

    private static Object method(Object t, String name, List<Object> args) {
      if (t instanceof String s) {
        switch (name) {
          case "strip":
            return args.isEmpty() ? s.strip() : stripChars(s, str(args.get(0)), true, true);
          case "lstrip":
            return args.isEmpty() ? s.stripLeading() : stripChars(s, str(args.get(0)), true, false);
          case "rstrip":
            return args.isEmpty()
                ? s.stripTrailing()
                : stripChars(s, str(args.get(0)), false, true);
          case "upper":
            return s.toUpperCase(Locale.ROOT);
          case "lower":
            return s.toLowerCase(Locale.ROOT);
          case "title":
            return title(s);
          case "capitalize":
            return s.isEmpty()
                ? s
                : s.substring(0, 1).toUpperCase(Locale.ROOT)
                    + s.substring(1).toLowerCase(Locale.ROOT);
          case "startswith":
            return s.startsWith(str(args.get(0)));
          case "endswith":
            return s.endsWith(str(args.get(0)));
          case "replace":
            return s.replace(str(args.get(0)), str(args.get(1)));
          case "split":
            {
              List<Object> out = new ArrayList<>();
              if (args.isEmpty()) {
                for (String p : s.strip().split("\\s+")) {
                  if (!p.isEmpty()) {
                    out.add(p);
                  }
                }
              } else {
                out.addAll(
                    List.of(
                        (Object[]) s.split(java.util.regex.Pattern.quote(str(args.get(0))), -1)));
              }
              return out;
            }
          default:
            break;
        }
      }
      if (t instanceof Map<?, ?> m) {
        switch (name) {
          case "get":
            return m.containsKey(str(args.get(0)))
                ? m.get(str(args.get(0)))
                : (args.size() > 1 ? args.get(1) : null);
          case "keys":
            return new ArrayList<Object>(m.keySet());
          case "values":
            return new ArrayList<Object>(m.values());
          case "items":
            {
              List<Object> out = new ArrayList<>();
              for (Map.Entry<?, ?> en : m.entrySet()) {
                out.add(List.of(en.getKey(), en.getValue() == null ? "None" : en.getValue()));
              }
              return out;
            }
          default:
            break;
        }
      }
      throw new IllegalArgumentException(
          "chat template calls unsupported method ." + name + "() on a " + typeName(t));
    }

    private static String stripChars(String s, String chars, boolean left, boolean right) {
      int a = 0;
      int b = s.length();
      while (left && a < b && chars.indexOf(s.charAt(a)) >= 0) {
        a++;
      }
      while (right && b > a && chars.indexOf(s.charAt(b - 1)) >= 0) {
        b--;
      }
      return s.substring(a, b);
    }

    private static String title(String s) {
      StringBuilder b = new StringBuilder();
      boolean start = true;
      for (char c : s.toCharArray()) {
        b.append(start ? Character.toUpperCase(c) : Character.toLowerCase(c));
        start = !Character.isLetter(c);
      }
      return b.toString();
    }

    private static Object filter(String name, Object v, List<Object> args) {
      switch (name) {
        case "trim":
          return str(v).strip();
        case "upper":
          return str(v).toUpperCase(Locale.ROOT);
        case "lower":
          return str(v).toLowerCase(Locale.ROOT);
        case "capitalize":
          return method(str(v), "capitalize", args);
        case "title":
          return title(str(v));
        case "string":
          return str(v);
        case "int":
          return v instanceof String s ? Long.parseLong(s.strip()) : toLong(v);
        case "length":
        case "count":
          return (long) (v instanceof String s ? s.length() : iterate(v).size());
        case "first":
          {
            List<Object> l = iterate(v);
            return l.isEmpty() ? UNDEFINED : l.get(0);
          }
        case "last":
          {
            List<Object> l = iterate(v);
            return l.isEmpty() ? UNDEFINED : l.get(l.size() - 1);
          }
        case "list":
          return new ArrayList<>(iterate(v));
        case "join":
          {
            StringBuilder b = new StringBuilder();
            String sep = args.isEmpty() ? "" : str(args.get(0));
            List<Object> l = iterate(v);
            for (int k = 0; k < l.size(); k++) {
              if (k > 0) {
                b.append(sep);
              }
              b.append(str(l.get(k)));
            }
            return b.toString();
          }
        case "default":
          return v == UNDEFINED || (args.size() > 1 && truthy(args.get(1)) && !truthy(v))
              ? (args.isEmpty() ? "" : args.get(0))
              : v;
        case "tojson":
          return toJson(v);
        case "selectattr":
        case "rejectattr":
          {
            List<Object> out = new ArrayList<>();
            for (Object item : iterate(v)) {
              Object attr = index(item, args.get(0));
              boolean ok =
                  args.size() == 1
                      ? truthy(attr)
                      : test(str(args.get(1)), attr, args.subList(2, args.size()));
              if (ok == name.equals("selectattr")) {
                out.add(item);
              }
            }
            return out;
          }
        case "map":
          {
            List<Object> out = new ArrayList<>();
            for (Object item : iterate(v)) {
              out.add(index(item, args.get(0)));
            }
            return out;
          }
        default:
          throw new IllegalArgumentException("chat template uses unsupported filter |" + name);
      }
    }

    private static boolean test(String name, Object v, List<Object> args) {
      switch (name) {
        case "defined":
          return v != UNDEFINED;
        case "undefined":
          return v == UNDEFINED;
        case "none":
          return v == null;
        case "string":
          return v instanceof String;
        case "number":
          return v instanceof Long || v instanceof Double;
        case "integer":
          return v instanceof Long;
        case "boolean":
          return v instanceof Boolean;
        case "mapping":
          return v instanceof Map;
        case "sequence":
        case "iterable":
          return v instanceof List || v instanceof String || v instanceof Map;
        case "true":
          return Boolean.TRUE.equals(v);
        case "false":
          return Boolean.FALSE.equals(v);
        case "equalto":
        case "eq":
        case "==":
          return equal(v, args.get(0));
        case "ne":
        case "!=":
          return !equal(v, args.get(0));
        case "in":
          return contains(args.get(0), v);
        default:
          throw new IllegalArgumentException(
              "chat template uses unsupported test 'is " + name + "'");
      }
    }

    private static Object binary(Bin b, Scope scope) {
      switch (b.op()) {
        case "and":
          {
            Object a = eval(b.a(), scope);
            return truthy(a) ? eval(b.b(), scope) : a;
          }
        case "or":
          {
            Object a = eval(b.a(), scope);
            return truthy(a) ? a : eval(b.b(), scope);
          }
        default:
          break;
      }
      Object x = eval(b.a(), scope);
      Object y = eval(b.b(), scope);
      switch (b.op()) {
        case "==":
          return equal(x, y);
        case "!=":
          return !equal(x, y);
        case "<":
          return compare(x, y) < 0;
        case ">":
          return compare(x, y) > 0;
        case "<=":
          return compare(x, y) <= 0;
        case ">=":
          return compare(x, y) >= 0;
        case "in":
          return contains(y, x);
        case "~":
          return str(x) + str(y);
        case "+":
          if (x instanceof String || y instanceof String) {
            if (!(x instanceof String) || !(y instanceof String)) {
              throw new IllegalArgumentException(
                  "chat template adds a string and a " + typeName(x instanceof String ? y : x));
            }
            return (String) x + y;
          }
          if (x instanceof List<?> lx && y instanceof List<?> ly) {
            List<Object> out = new ArrayList<>(lx);
            out.addAll(ly);
            return out;
          }
          return arith('+', x, y);
        case "-":
        case "*":
        case "/":
        case "//":
        case "%":
          return arith(b.op().equals("//") ? 'f' : b.op().charAt(0), x, y);
        default:
          throw new IllegalStateException("unknown operator " + b.op());
      }
    }

    private static Object arith(char op, Object x, Object y) {
      if (x instanceof Double || y instanceof Double || op == '/') {
        double a = toDouble(x);
        double c = toDouble(y);
        switch (op) {
          case '+':
            return a + c;
          case '-':
            return a - c;
          case '*':
            return a * c;
          case '/':
            return a / c;
          case 'f':
            return Math.floor(a / c);
          default:
            return a - c * Math.floor(a / c);
        }
      }
      long a = toLong(x);
      long c = toLong(y);
      switch (op) {
        case '+':
          return a + c;
        case '-':
          return a - c;
        case '*':
          return a * c;
        case 'f':
          return Math.floorDiv(a, c);
        default:
          return Math.floorMod(a, c);
      }
    }

    private static Object index(Object t, Object k) {
      if (t instanceof Map<?, ?> m) {
        Object key = k instanceof String ? k : str(k);
        return m.containsKey(key) ? m.get(key) : UNDEFINED;
      }
      if (t instanceof List<?> l) {
        long i = toLong(k);
        int n = l.size();
        long j = i < 0 ? n + i : i;
        if (j < 0 || j >= n) {
          return UNDEFINED;
        }
        return l.get((int) j);
      }
      if (t instanceof String s) {
        if (!(k instanceof Long)) {
          return UNDEFINED; // an attribute of a string (e.g. selectattr over characters)
        }
        long i = toLong(k);
        long j = i < 0 ? s.length() + i : i;
        return j < 0 || j >= s.length() ? UNDEFINED : String.valueOf(s.charAt((int) j));
      }
      if (t == UNDEFINED || t == null) {
        return UNDEFINED;
      }
      throw new IllegalArgumentException("chat template indexes a " + typeName(t));
    }

    private static boolean contains(Object container, Object item) {
      if (container instanceof String s) {
        return s.contains(str(item));
      }
      if (container instanceof Map<?, ?> m) {
        return m.containsKey(item);
      }
      for (Object o : iterate(container)) {
        if (equal(o, item)) {
          return true;
        }
      }
      return false;
    }

    static boolean equal(Object a, Object b) {
      if ((a instanceof Long || a instanceof Double)
          && (b instanceof Long || b instanceof Double)) {
        return toDouble(a) == toDouble(b);
      }
      if (a == UNDEFINED || b == UNDEFINED) {
        return a == b;
      }
      return java.util.Objects.equals(a, b);
    }

    private static int compare(Object a, Object b) {
      if (a instanceof String x && b instanceof String y) {
        return x.compareTo(y);
      }
      return Double.compare(toDouble(a), toDouble(b));
    }

    static boolean truthy(Object v) {
      if (v == null || v == UNDEFINED) {
        return false;
      }
      if (v instanceof Boolean b) {
        return b;
      }
      if (v instanceof String s) {
        return !s.isEmpty();
      }
      if (v instanceof Long l) {
        return l != 0;
      }
      if (v instanceof Double d) {
        return d != 0;
      }
      if (v instanceof List<?> l) {
        return !l.isEmpty();
      }
      if (v instanceof Map<?, ?> m) {
        return !m.isEmpty();
      }
      return true;
    }

    private static long toLong(Object v) {
      if (v instanceof Number n) {
        return n.longValue();
      }
      if (v instanceof Boolean b) {
        return b ? 1 : 0;
      }
      throw new IllegalArgumentException("chat template expects a number, found " + typeName(v));
    }

    private static double toDouble(Object v) {
      if (v instanceof Number n) {
        return n.doubleValue();
      }
      if (v instanceof Boolean b) {
        return b ? 1 : 0;
      }
      throw new IllegalArgumentException("chat template expects a number, found " + typeName(v));
    }

    /** Python's {@code str()} of a template value. */
    static String str(Object v) {
      if (v == null) {
        return "None";
      }
      if (v == UNDEFINED) {
        return "";
      }
      if (v instanceof Boolean b) {
        return b ? "True" : "False";
      }
      if (v instanceof Double d) {
        return d == Math.rint(d) && !Double.isInfinite(d) ? String.valueOf(d) : Double.toString(d);
      }
      if (v instanceof String s) {
        return s;
      }
      if (v instanceof List<?> || v instanceof Map<?, ?>) {
        return toJson(v).replace('"', '\'');
      }
      return String.valueOf(v);
    }

    static String toJson(Object v) {
      if (v == null || v == UNDEFINED) {
        return "null";
      }
      if (v instanceof String s) {
        StringBuilder b = new StringBuilder("\"");
        for (char c : s.toCharArray()) {
          switch (c) {
            case '"':
              b.append("\\\"");
              break;
            case '\\':
              b.append("\\\\");
              break;
            case '\n':
              b.append("\\n");
              break;
            case '\r':
              b.append("\\r");
              break;
            case '\t':
              b.append("\\t");
              break;
            default:
              if (c < 0x20) { // ensure_ascii=False, as Hugging Face's tojson
                b.append(String.format(Locale.ROOT, "\\u%04x", (int) c));
              } else {
                b.append(c);
              }
          }
        }
        return b.append('"').toString();
      }
      if (v instanceof Boolean b) {
        return b ? "true" : "false";
      }
      if (v instanceof List<?> l) {
        StringBuilder b = new StringBuilder("[");
        for (int k = 0; k < l.size(); k++) {
          b.append(k > 0 ? ", " : "").append(toJson(l.get(k)));
        }
        return b.append(']').toString();
      }
      if (v instanceof Map<?, ?> m) {
        StringBuilder b = new StringBuilder("{");
        int k = 0;
        for (Map.Entry<?, ?> e : m.entrySet()) {
          b.append(k++ > 0 ? ", " : "")
              .append(toJson(String.valueOf(e.getKey())))
              .append(": ")
              .append(toJson(e.getValue()));
        }
        return b.append('}').toString();
      }
      return String.valueOf(v);
    }

    private static String typeName(Object v) {
      return v == null ? "None" : v == UNDEFINED ? "undefined value" : v.getClass().getSimpleName();
    }
  }
}
