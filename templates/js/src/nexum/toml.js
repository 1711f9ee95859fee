// A small TOML reader for FakeHost: enough of TOML for a module.toml (tables, arrays of
// tables, strings, integers, floats, booleans, arrays, inline tables, comments). It is not
// a general TOML parser: dotted keys, multi-line strings and dates are refused with the
// line they are on, rather than misread. Kept here so tests need no dependency.

/**
 * Parses `text` (the contents of `file`) into plain objects and arrays. Integers come back
 * as BigInts: TOML's are 64-bit, and an integer must stay distinct from a float such as 1.0
 * (nexum refuses a float where it wants an integer).
 */
export function parseToml(text, file = 'module.toml') {
  return new Reader(text, file).document();
}

/** Sets an own property, so that a key such as `__proto__` is data, not a prototype. */
function define(object, key, value) {
  Object.defineProperty(object, key, { value, enumerable: true, writable: true, configurable: true });
  return value;
}

const BARE_KEY = /[A-Za-z0-9_-]/;
const ESCAPES = { b: '\b', t: '\t', n: '\n', f: '\f', r: '\r', '"': '"', '\\': '\\' };

class Reader {
  constructor(text, file) {
    this.text = text;
    this.file = file;
    this.at = 0;
  }

  fail(why) {
    const line = this.text.slice(0, this.at).split('\n').length;
    return new SyntaxError(`${this.file} line ${line}: ${why}`);
  }

  peek(n = 1) {
    return this.text.slice(this.at, this.at + n);
  }

  /** Spaces and tabs; with `lines`, also newlines and comments. */
  skip(lines = false) {
    for (;;) {
      const c = this.text[this.at];
      if (c === ' ' || c === '\t' || (lines && (c === '\n' || c === '\r'))) this.at++;
      else if (c === '#') while (this.at < this.text.length && this.text[this.at] !== '\n') this.at++;
      else return;
    }
  }

  expect(token) {
    if (this.peek(token.length) !== token) throw this.fail(`expected '${token}'`);
    this.at += token.length;
  }

  document() {
    const root = {};
    let table = root;
    for (;;) {
      this.skip(true);
      if (this.at >= this.text.length) return root;
      if (this.peek(2) === '[[') {
        this.at += 2;
        const name = this.tableName(']]');
        if (!Object.hasOwn(root, name)) define(root, name, []);
        if (!Array.isArray(root[name])) throw this.fail(`[[${name}]] after [${name}]`);
        table = {};
        root[name].push(table);
      } else if (this.peek() === '[') {
        this.at += 1;
        const name = this.tableName(']');
        if (Object.hasOwn(root, name)) throw this.fail(`[${name}] is defined twice`);
        table = define(root, name, {});
      } else {
        this.keyValue(table);
      }
      this.endOfLine();
    }
  }

  /** One `key = value` into `table`; a key set twice is refused, as TOML says. */
  keyValue(table) {
    const key = this.key();
    this.skip();
    this.expect('=');
    this.skip();
    if (Object.hasOwn(table, key)) throw this.fail(`'${key}' is set twice`);
    define(table, key, this.value());
  }

  tableName(close) {
    this.skip();
    const name = this.key();
    this.skip();
    if (this.peek() === '.') throw this.fail('dotted table names are beyond this small TOML reader');
    this.expect(close);
    return name;
  }

  endOfLine() {
    this.skip();
    const c = this.text[this.at];
    if (c !== undefined && c !== '\n' && c !== '\r') throw this.fail(`unexpected '${c}'`);
  }

  key() {
    const c = this.peek();
    if (c === '"' || c === "'") return this.string();
    const start = this.at;
    while (this.at < this.text.length && BARE_KEY.test(this.text[this.at])) this.at++;
    if (this.at === start) throw this.fail('expected a key');
    if (this.peek() === '.') throw this.fail('dotted keys are beyond this small TOML reader');
    return this.text.slice(start, this.at);
  }

  value() {
    const c = this.peek();
    if (c === '"' || c === "'") return this.string();
    if (c === '[') return this.array();
    if (c === '{') return this.inlineTable();
    const match = /^[^\s,\]}#]+/.exec(this.text.slice(this.at));
    if (match === null) throw this.fail('expected a value');
    this.at += match[0].length;
    return this.scalar(match[0]);
  }

  scalar(word) {
    if (word === 'true') return true;
    if (word === 'false') return false;
    if (/^[+-]?(inf|nan)$/.test(word)) return word.includes('nan') ? NaN : word.startsWith('-') ? -Infinity : Infinity;
    const digits = word.replace(/(?<=[0-9a-fA-F])_(?=[0-9a-fA-F])/g, '');
    if (/^[+-]?(0|[1-9][0-9]*)$/.test(digits) || /^0x[0-9a-fA-F]+$|^0o[0-7]+$|^0b[01]+$/.test(digits)) {
      return digits.startsWith('-') ? -BigInt(digits.slice(1)) : BigInt(digits.replace(/^\+/, ''));
    }
    if (/^[+-]?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?$/.test(digits)) return Number(digits);
    if (/^\d{4}-\d{2}-\d{2}/.test(word)) throw this.fail('dates are beyond this small TOML reader');
    throw this.fail(`cannot read the value '${word}'`);
  }

  string() {
    if (this.peek(3) === '"""' || this.peek(3) === "'''") {
      throw this.fail('multi-line strings are beyond this small TOML reader');
    }
    const quote = this.text[this.at++];
    let out = '';
    for (;;) {
      const c = this.text[this.at++];
      if (c === undefined || c === '\n') throw this.fail('unterminated string');
      if (c === quote) return out;
      if (c === '\\' && quote === '"') out += this.escape();
      else out += c;
    }
  }

  escape() {
    const c = this.text[this.at++];
    if (c in ESCAPES) return ESCAPES[c];
    const size = c === 'u' ? 4 : c === 'U' ? 8 : 0;
    const hex = this.text.slice(this.at, this.at + size);
    if (size === 0 || !/^[0-9a-fA-F]+$/.test(hex) || hex.length !== size) throw this.fail(`bad escape '\\${c}'`);
    this.at += size;
    return String.fromCodePoint(parseInt(hex, 16));
  }

  array() {
    this.expect('[');
    const items = [];
    for (;;) {
      this.skip(true);
      if (this.peek() === ']') break;
      items.push(this.value());
      this.skip(true);
      if (this.peek() !== ',') break;
      this.at++;
    }
    this.skip(true);
    this.expect(']');
    return items;
  }

  inlineTable() {
    this.expect('{');
    const table = {};
    this.skip();
    while (this.peek() !== '}') {
      this.keyValue(table);
      this.skip();
      if (this.peek() !== ',') break;
      this.at++;
      this.skip();
    }
    this.expect('}');
    return table;
  }
}
