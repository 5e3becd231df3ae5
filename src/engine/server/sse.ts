/**
 * Server-sent events as inference servers stream them (llama-server, OpenAI-compatible): `data:`
 * lines, an empty line ending each event, `:` comments (keep-alive pings) ignored. Chunks from the
 * network may end anywhere, even inside a line or between `\r` and `\n`, so text is held until its
 * line is complete.
 */
export class SseParser {
  private buffer = '';
  private data: string[] = [];

  /** The data of every event completed by this chunk, in order. */
  push(chunk: string): string[] {
    this.buffer += chunk;
    const events: string[] = [];
    for (;;) {
      const end = this.buffer.search(/\r\n|\r|\n/);
      // A trailing `\r` may be the first half of `\r\n`: wait for the next chunk.
      if (end === -1 || (end === this.buffer.length - 1 && this.buffer[end] === '\r')) break;
      const line = this.buffer.slice(0, end);
      this.buffer = this.buffer.slice(end + (this.buffer.startsWith('\r\n', end) ? 2 : 1));
      this.line(line, events);
    }
    return events;
  }

  /** The last event when the stream ends without its closing empty line. */
  end(): string[] {
    const events: string[] = [];
    if (this.buffer) this.line(this.buffer, events);
    this.buffer = '';
    this.line('', events);
    return events;
  }

  private line(line: string, events: string[]): void {
    if (line === '') {
      if (this.data.length > 0) events.push(this.data.join('\n'));
      this.data = [];
      return;
    }
    if (line.startsWith(':')) return;
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    if (field !== 'data') return;
    const value = colon === -1 ? '' : line.slice(colon + 1);
    this.data.push(value.startsWith(' ') ? value.slice(1) : value);
  }
}

/** Newline-delimited JSON (Ollama's stream): one object per complete line. */
export class NdjsonParser {
  private buffer = '';

  push(chunk: string): string[] {
    this.buffer += chunk;
    const lines = this.buffer.split('\n');
    this.buffer = lines.pop()!;
    return lines.map((line) => line.trim()).filter(Boolean);
  }

  end(): string[] {
    const rest = this.buffer.trim();
    this.buffer = '';
    return rest ? [rest] : [];
  }
}
