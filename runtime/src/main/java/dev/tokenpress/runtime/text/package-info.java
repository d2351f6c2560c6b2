/**
 * Tokenizer and prompt construction.
 *
 * <p>{@link dev.tokenpress.runtime.text.Tokenizer} runs a checkpoint's {@code tokenizer.json} with
 * the Hugging Face tokenizers library (DJL binding, offline), special tokens added as the file's
 * post-processor says, truncation and padding off. {@link dev.tokenpress.runtime.text.ChatTemplate}
 * renders {@code tokenizer_config.json}'s Jinja {@code chat_template} in Java (the Jinja subset
 * chat templates use, with Hugging Face's {@code trim_blocks}/{@code lstrip_blocks}; checked
 * against Jinja2 on the tiny-llava, llava-hf, Llama-2 and a whitespace-heavy template). {@link
 * dev.tokenpress.runtime.text.PromptEncoder} puts the user text in a one-turn conversation with one
 * image, renders, tokenizes, finds the single {@code <image>} placeholder and rejects a prompt
 * whose expanded length reaches the context with {@link
 * dev.tokenpress.runtime.text.PromptTooLongException}.
 */
package dev.tokenpress.runtime.text;
