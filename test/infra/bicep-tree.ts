import { readFileSync } from 'node:fs';
import Parser from 'tree-sitter';
import Bicep from 'tree-sitter-bicep';

// Reads Bicep with tree-sitter-bicep (the Bicep CLI cannot be installed here) and answers the
// questions the infra tests ask of a template: its declarations, property values, references.

export type Node = Parser.SyntaxNode;

const parser = new Parser();
// The grammar types its inner language object as `unknown`, tree-sitter as its own handle.
parser.setLanguage(Bicep as Parser.Language);

/** Every ERROR or MISSING node of a parsed source, as `line:column: text`. */
export function syntaxProblems(source: string): string[] {
  const problems: string[] = [];
  const visit = (node: Node): void => {
    if (node.type === 'ERROR' || node.isMissing) {
      const { row, column } = node.startPosition;
      const what = node.isMissing ? `missing ${node.type}` : JSON.stringify(node.text.slice(0, 60));
      problems.push(`${row + 1}:${column + 1}: ${what}`);
    }
    for (const child of node.children) visit(child);
  };
  visit(parser.parse(source).rootNode);
  return problems;
}

export interface Param {
  readonly name: string;
  /** `string`, `'a' | 'b'`, `downstreamApi[]`, … */
  readonly type: Node | undefined;
  readonly defaultValue: Node | undefined;
  /** Decorator names: `secure`, `description`, … */
  readonly decorators: readonly string[];
}

export interface Resource {
  readonly symbol: string;
  /** e.g. `Microsoft.Web/sites`, without the API version. */
  readonly type: string;
  readonly body: Node;
  /** The `if (…)` of a conditional resource, which is deployed only when it is true. */
  readonly condition?: Node;
}

/** Bicep's escape sequences decoded: `\'`, `\\`, `\n`, `\r`, `\t`, `\$`, `\u{…}`. */
function unescape(text: string): string {
  return text.replace(/\\(u\{[0-9a-fA-F]+\}|.)/g, (_, escaped: string) => {
    if (escaped.startsWith('u{')) return String.fromCodePoint(parseInt(escaped.slice(2, -1), 16));
    const simple: Record<string, string> = {
      n: '\n',
      r: '\r',
      t: '\t',
      "'": "'",
      '\\': '\\',
      $: '$',
    };
    const decoded = simple[escaped];
    if (decoded === undefined) throw new Error(`unknown escape \\${escaped}`);
    return decoded;
  });
}

/** The text of a string literal, or undefined for anything else (an interpolated string too). */
function literalString(node: Node | undefined): string | undefined {
  const parts = stringParts(node);
  if (parts?.some((part) => typeof part !== 'string')) return undefined;
  return parts?.join('');
}

/** A literal string, number, boolean or null as a JavaScript value; undefined otherwise. */
export function literal(node: Node | undefined): string | number | boolean | null | undefined {
  switch (node?.type) {
    case 'string':
      return literalString(node);
    case 'number':
      return Number(node.text);
    case 'boolean':
      return node.text === 'true';
    case 'null':
      return null;
    default:
      return undefined;
  }
}

/** `a.b.c` as `['a', 'b', 'c']`; undefined for anything but identifiers and member access. */
export function referencePath(node: Node | undefined): string[] | undefined {
  if (node?.type === 'identifier') return [node.text];
  if (node?.type !== 'member_expression') return undefined;
  const object = referencePath(node.childForFieldName('object') ?? undefined);
  const property = node.childForFieldName('property');
  return object === undefined || property === null ? undefined : [...object, property.text];
}

/**
 * The parts of a string: literal text (escapes decoded), and interpolated expressions as nodes.
 * The text comes from the source between the nodes: tree-sitter-bicep 1.1 leaves whitespace-only
 * text out of its `string_content` nodes (`' '` has none).
 */
export function stringParts(node: Node | undefined): (string | Node)[] | undefined {
  if (node?.type !== 'string') return undefined;
  // Node offsets count UTF-8 bytes.
  const source = Buffer.from(node.text);
  const quote = node.text.startsWith("'''") ? 3 : 1;
  // A multi-line string ('''…''') has no escapes.
  const text = (from: number, to: number) => {
    const raw = source.subarray(from, to).toString();
    return quote === 3 ? raw : unescape(raw);
  };
  const parts: (string | Node)[] = [];
  let at = quote;
  for (const interpolation of node.namedChildren.filter((c) => c.type === 'interpolation')) {
    const from = interpolation.startIndex - node.startIndex;
    if (from > at) parts.push(text(at, from));
    parts.push(interpolation.namedChildren[0] ?? interpolation);
    at = interpolation.endIndex - node.startIndex;
  }
  if (source.length - quote > at) parts.push(text(at, source.length - quote));
  return parts;
}

/** An object literal's properties by key (identifier or quoted key). */
export function objectProperties(node: Node | undefined): Map<string, Node> {
  const properties = new Map<string, Node>();
  if (node?.type !== 'object') return properties;
  for (const property of node.namedChildren.filter((child) => child.type === 'object_property')) {
    const [key, value] = property.namedChildren;
    if (key === undefined || value === undefined) continue;
    properties.set(key.type === 'identifier' ? key.text : (literalString(key) ?? key.text), value);
  }
  return properties;
}

/** The value at a path of nested object properties. */
export function propertyAt(node: Node | undefined, ...path: string[]): Node | undefined {
  let current = node;
  for (const key of path) current = objectProperties(current).get(key);
  return current;
}

/** A call's function name and arguments, or undefined when `node` is no call. */
export function call(node: Node | undefined): { name: string; args: Node[] } | undefined {
  if (node?.type !== 'call_expression') return undefined;
  const name = node.childForFieldName('function')?.text ?? '';
  const args = node.childForFieldName('arguments')?.namedChildren ?? [];
  return { name, args };
}

/** One parsed .bicep file and its top-level declarations. */
export class BicepTemplate {
  readonly params = new Map<string, Param>();
  readonly variables = new Map<string, Node>();
  readonly resources = new Map<string, Resource>();
  readonly modules = new Map<string, { readonly path: string; readonly body: Node }>();
  readonly outputs = new Map<string, Node>();
  /** `type name = …` declarations, by name. */
  readonly types = new Map<string, Node>();
  constructor(path: string) {
    const root = parser.parse(readFileSync(path, 'utf8')).rootNode;
    let decorators: string[] = [];
    for (const node of root.namedChildren) {
      if (node.type === 'comment') continue;
      if (node.type === 'decorators') {
        decorators = node.namedChildren.map(
          (decorator) => call(decorator.namedChildren[0])?.name ?? decorator.text,
        );
        continue;
      }
      const [name, second, third] = node.namedChildren;
      const symbol = name?.text ?? '';
      switch (node.type) {
        case 'parameter_declaration':
          this.params.set(symbol, { name: symbol, type: second, defaultValue: third, decorators });
          break;
        case 'variable_declaration':
          if (second !== undefined) this.variables.set(symbol, second);
          break;
        case 'resource_declaration':
          if (third !== undefined) {
            const [condition, body] =
              third.type === 'if_statement' ? third.namedChildren : [undefined, third];
            this.resources.set(symbol, {
              symbol,
              type: (literalString(second) ?? '').split('@')[0] ?? '',
              body: body ?? third,
              ...(condition === undefined ? {} : { condition }),
            });
          }
          break;
        case 'module_declaration':
          if (third !== undefined) {
            this.modules.set(symbol, { path: literalString(second) ?? '', body: third });
          }
          break;
        case 'type_declaration':
          if (second !== undefined) this.types.set(symbol, second);
          break;
        case 'output_declaration':
          if (third !== undefined) this.outputs.set(symbol, third);
          break;
      }
      decorators = [];
    }
  }

  /** The resources of one type (`Microsoft.Web/sites`). */
  resourcesOfType(type: string): Resource[] {
    return [...this.resources.values()].filter((resource) => resource.type === type);
  }

  /** A variable's value followed through further variables and object members. */
  resolve(node: Node | undefined): Node | undefined {
    const path = referencePath(node);
    if (path === undefined) return node;
    const [head, ...members] = path;
    const value = head === undefined ? undefined : this.variables.get(head);
    if (value === undefined) return node;
    return this.resolve(propertyAt(this.resolve(value), ...members));
  }

  /** The resource a reference such as `storage.id` or `storage` starts from. */
  resourceReferenced(node: Node | undefined): Resource | undefined {
    const head = referencePath(node)?.[0];
    return head === undefined ? undefined : this.resources.get(head);
  }
}
