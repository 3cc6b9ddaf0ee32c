import { referencePath, stringParts, type BicepTemplate, type Node } from './bicep-tree.ts';

// Evaluates Bicep expressions as Azure Resource Manager does at deployment, so the infra tests can
// compute the app settings a deployment writes from given parameter values and feed them to the
// app's own config. Only the functions and operators the templates use are modelled, each as ARM
// documents it (https://learn.microsoft.com/azure/azure-resource-manager/bicep/bicep-functions);
// anything else throws, so a template that starts using more fails here instead of passing
// unchecked. Where ARM's behaviour is unclear this is the stricter of the readings (`&&` and `||`
// evaluate both sides).

export type Value = string | number | boolean | null | Value[] | { [key: string]: Value } | Lambda;
type Lambda = (...args: Value[]) => Value;

/** A deployment stopped by the template's own `fail(message)`. */
export class BicepFailure extends Error {
  override readonly name = 'BicepFailure';
}

type Scope = ReadonlyMap<string, Value>;

function isObject(value: Value): value is { [key: string]: Value } {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function asString(value: Value, what: string): string {
  if (typeof value !== 'string')
    throw new Error(`${what} needs a string, got ${JSON.stringify(value)}`);
  return value;
}

function asNumber(value: Value, what: string): number {
  if (typeof value !== 'number')
    throw new Error(`${what} needs an int, got ${JSON.stringify(value)}`);
  return value;
}

function asArray(value: Value, what: string): Value[] {
  if (!Array.isArray(value))
    throw new Error(`${what} needs an array, got ${JSON.stringify(value)}`);
  return value;
}

function asLambda(value: Value, what: string): Lambda {
  if (typeof value !== 'function') throw new Error(`${what} needs a lambda`);
  return value;
}

/** ARM's `equals`: strings compare case-sensitively, arrays and objects by content. */
function equals(a: Value, b: Value): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** `union` of objects: later values win, nested objects merge (bicep-functions-object#union). */
function unionObjects(
  a: { [key: string]: Value },
  b: { [key: string]: Value },
): { [key: string]: Value } {
  const merged: { [key: string]: Value } = { ...a };
  for (const [key, value] of Object.entries(b)) {
    const existing = merged[key];
    merged[key] =
      existing !== undefined && isObject(existing) && isObject(value)
        ? unionObjects(existing, value)
        : value;
  }
  return merged;
}

const FUNCTIONS: Record<string, (args: Value[]) => Value> = {
  // bicep-functions-string: `string` of an int is its decimal text.
  string: ([value]) => {
    if (typeof value === 'string') return value;
    if (typeof value === 'number') return String(value);
    throw new Error(`string() of ${JSON.stringify(value)} is not modelled`);
  },
  toUpper: ([value]) => asString(value ?? null, 'toUpper').toUpperCase(),
  toLower: ([value]) => asString(value ?? null, 'toLower').toLowerCase(),
  // Every occurrence, case-sensitive.
  replace: ([text, from, to]) =>
    asString(text ?? null, 'replace').replaceAll(
      asString(from ?? null, 'replace'),
      asString(to ?? null, 'replace'),
    ),
  // Case-insensitive (bicep-functions-string#startswith).
  startsWith: ([text, prefix]) =>
    asString(text ?? null, 'startsWith')
      .toLowerCase()
      .startsWith(asString(prefix ?? null, 'startsWith').toLowerCase()),
  // A string: case-sensitive substring; an array: an equal element; an object: a key, ignoring case.
  contains: ([container, item]) => {
    if (typeof container === 'string')
      return container.includes(asString(item ?? null, 'contains'));
    if (Array.isArray(container)) return container.some((element) => equals(element, item ?? null));
    if (container !== undefined && isObject(container)) {
      const key = asString(item ?? null, 'contains').toLowerCase();
      return Object.keys(container).some((name) => name.toLowerCase() === key);
    }
    throw new Error('contains() of this value is not modelled');
  },
  // An array: the first equal element's index (strings case-sensitive), else -1
  // (bicep-functions-array#indexof).
  indexOf: ([array, item]) =>
    asArray(array ?? null, 'indexOf').findIndex((e) => equals(e, item ?? null)),
  length: ([value]) => {
    if (typeof value === 'string' || Array.isArray(value)) return value.length;
    if (value !== undefined && isObject(value)) return Object.keys(value).length;
    throw new Error('length() of this value is not modelled');
  },
  empty: ([value]) =>
    value === null ||
    value === '' ||
    (Array.isArray(value) && value.length === 0) ||
    (value !== undefined && isObject(value) && Object.keys(value).length === 0),
  // Fails outside the string, as ARM does.
  substring: ([text, start, count]) => {
    const s = asString(text ?? null, 'substring');
    const from = asNumber(start ?? null, 'substring');
    const length = count === undefined ? s.length - from : asNumber(count, 'substring');
    if (from < 0 || length < 0 || from + length > s.length) {
      throw new Error(`substring(${JSON.stringify(s)}, ${from}, ${length}) is out of range`);
    }
    return s.slice(from, from + length);
  },
  take: ([value, count]) => {
    const n = Math.max(0, asNumber(count ?? null, 'take'));
    if (typeof value === 'string') return value.slice(0, n);
    return asArray(value ?? null, 'take').slice(0, n);
  },
  // Strings only (bicep-functions-array#join).
  join: ([array, delimiter]) =>
    asArray(array ?? null, 'join')
      .map((element) => asString(element, 'join'))
      .join(asString(delimiter ?? null, 'join')),
  // At every occurrence of the delimiter, or of any of an array of them, empty parts kept
  // (bicep-functions-string#split).
  split: ([text, delimiter]) => {
    const delimiters = (Array.isArray(delimiter) ? delimiter : [delimiter ?? null]).map((d) =>
      asString(d, 'split'),
    );
    const parts: string[] = [];
    const s = asString(text ?? null, 'split');
    let start = 0;
    for (let i = 0; i < s.length;) {
      const found = delimiters.find((d) => d !== '' && s.startsWith(d, i));
      if (found === undefined) {
        i += 1;
      } else {
        parts.push(s.slice(start, i));
        i += found.length;
        start = i;
      }
    }
    parts.push(s.slice(start));
    return parts;
  },
  concat: (args) =>
    args.every(Array.isArray) ? args.flat(1) : args.map((arg) => asString(arg, 'concat')).join(''),
  union: (args) => {
    if (args.every((arg) => isObject(arg))) {
      const objects = args as { [key: string]: Value }[];
      return objects.reduce((merged, next) => unionObjects(merged, next), {});
    }
    throw new Error('union() of arrays is not modelled');
  },
  range: ([start, count]) =>
    Array.from(
      { length: asNumber(count ?? null, 'range') },
      (_, i) => asNumber(start ?? null, 'range') + i,
    ),
  // bicep-functions-lambda: the lambda gets the element and, if it takes one, its index.
  map: ([array, lambda]) =>
    asArray(array ?? null, 'map').map((e, i) => asLambda(lambda ?? null, 'map')(e, i)),
  filter: ([array, lambda]) =>
    asArray(array ?? null, 'filter').filter(
      (e, i) => asLambda(lambda ?? null, 'filter')(e, i) === true,
    ),
  reduce: ([array, initial, lambda]) =>
    asArray(array ?? null, 'reduce').reduce<Value>(
      (current, next, i) => asLambda(lambda ?? null, 'reduce')(current, next, i),
      initial ?? null,
    ),
  // bicep-functions-flow-control#fail: stops the deployment with this message.
  fail: ([message]) => {
    throw new BicepFailure(asString(message ?? null, 'fail'));
  },
};

/**
 * One template's expressions, given its parameter values and what Azure fills in at deployment
 * (`runtime`, by reference path such as `storage.properties.primaryEndpoints.table`).
 */
export class BicepEvaluator {
  private readonly variables = new Map<string, Value>();
  private readonly template: BicepTemplate;
  /** A parameter's value, or undefined to take its default. */
  private readonly supplied: (name: string) => Value | undefined;
  private readonly runtime: (path: string) => Value | undefined;

  constructor(
    template: BicepTemplate,
    supplied: (name: string) => Value | undefined,
    runtime: (path: string) => Value | undefined,
  ) {
    this.template = template;
    this.supplied = supplied;
    this.runtime = runtime;
  }

  parameter(name: string): Value {
    const value = this.supplied(name);
    if (value !== undefined) return value;
    const param = this.template.params.get(name);
    if (param?.defaultValue === undefined) throw new Error(`parameter ${name} has no value`);
    return this.evaluate(param.defaultValue);
  }

  /** Whether a resource is deployed: unconditional, or its `if (…)` is true. */
  deploys(symbol: string): boolean {
    const resource = this.template.resources.get(symbol);
    if (resource === undefined) throw new Error(`no resource ${symbol}`);
    return resource.condition === undefined || this.evaluate(resource.condition) === true;
  }

  evaluate(node: Node | undefined, scope: Scope = new Map()): Value {
    if (node === undefined) throw new Error('nothing to evaluate');
    switch (node.type) {
      case 'string':
        return (stringParts(node) ?? [])
          .map((part) => {
            if (typeof part === 'string') return part;
            const value = this.evaluate(part, scope);
            if (typeof value === 'string') return value;
            if (typeof value === 'number') return String(value);
            throw new Error(`interpolating ${JSON.stringify(value)} is not modelled`);
          })
          .join('');
      case 'number':
        return Number(node.text);
      case 'boolean':
        return node.text === 'true';
      case 'null':
        return null;
      case 'parenthesized_expression':
        return this.evaluate(node.namedChildren[0], scope);
      case 'array':
        return node.namedChildren
          .filter((child) => child.type !== 'comment')
          .map((child) => this.evaluate(child, scope));
      case 'object': {
        const object: { [key: string]: Value } = {};
        for (const property of node.namedChildren.filter((c) => c.type === 'object_property')) {
          const [key, value] = property.namedChildren;
          if (key === undefined || value === undefined) continue;
          const name =
            key.type === 'identifier' ? key.text : asString(this.evaluate(key, scope), 'key');
          object[name] = this.evaluate(value, scope);
        }
        return object;
      }
      case 'identifier':
        return this.identifier(node.text, scope);
      case 'member_expression':
        return this.member(node, scope);
      case 'subscript_expression': {
        const [target, index] = node.namedChildren;
        const container = this.evaluate(target, scope);
        const key = this.evaluate(index, scope);
        const value = Array.isArray(container)
          ? container[asNumber(key, 'index')]
          : isObject(container)
            ? container[asString(key, 'key')]
            : undefined;
        if (value === undefined) throw new Error(`${node.text}: no such element`);
        return value;
      }
      case 'call_expression':
        return this.call(node, scope);
      case 'lambda_expression': {
        const [parameters, body] = node.namedChildren;
        const names =
          parameters?.type === 'identifier'
            ? [parameters.text]
            : (parameters?.namedChildren.map((p) => p.text) ?? []);
        return (...args: Value[]) =>
          this.evaluate(
            body,
            new Map([...scope, ...names.map((name, i) => [name, args[i] ?? null] as const)]),
          );
      }
      case 'ternary_expression': {
        // ARM's if() evaluates only the branch the condition picks.
        const condition = this.evaluate(node.childForFieldName('condition') ?? undefined, scope);
        if (typeof condition !== 'boolean')
          throw new Error(`${node.text}: condition is not a bool`);
        const branch = node.childForFieldName(condition ? 'consequence' : 'alternative');
        return this.evaluate(branch ?? undefined, scope);
      }
      case 'unary_expression': {
        const operator = node.children[0]?.text;
        const argument = this.evaluate(node.namedChildren[0], scope);
        if (operator === '!' && typeof argument === 'boolean') return !argument;
        if (operator === '-' && typeof argument === 'number') return -argument;
        throw new Error(`${node.text}: not modelled`);
      }
      case 'binary_expression':
        return this.binary(node, scope);
      default:
        throw new Error(`${node.type} (${node.text.slice(0, 40)}) is not modelled`);
    }
  }

  private identifier(name: string, scope: Scope): Value {
    if (scope.has(name)) return scope.get(name) as Value;
    if (this.template.params.has(name)) return this.parameter(name);
    const variable = this.template.variables.get(name);
    if (variable !== undefined) {
      if (!this.variables.has(name)) this.variables.set(name, this.evaluate(variable));
      return this.variables.get(name) as Value;
    }
    throw new Error(`${name} is not a parameter or variable`);
  }

  private member(node: Node, scope: Scope): Value {
    const path = referencePath(node);
    const head = path?.[0];
    // A resource's property: what Azure fills in, else (for `name`) the name it declares.
    if (
      path !== undefined &&
      head !== undefined &&
      !scope.has(head) &&
      this.template.resources.has(head)
    ) {
      const filled = this.runtime(path.join('.'));
      if (filled !== undefined) return filled;
      const resource = this.template.resources.get(head);
      if (path.length === 2 && path[1] === 'name' && resource !== undefined) {
        const name = resource.body.namedChildren
          .filter((c) => c.type === 'object_property')
          .find((p) => p.namedChildren[0]?.text === 'name')?.namedChildren[1];
        return this.evaluate(name, scope);
      }
      throw new Error(`no stand-in for ${path.join('.')}`);
    }
    const object = this.evaluate(node.childForFieldName('object') ?? undefined, scope);
    const property = node.childForFieldName('property')?.text ?? '';
    const safe = node.children.some((child) => child.type === '.?');
    const access = (target: Value): Value => {
      const value = isObject(target) ? target[property] : undefined;
      if (value !== undefined) return value;
      if (safe) return null;
      throw new Error(`${node.text}: no property ${property}`);
    };
    // tree-sitter-bicep 1.1 reads `api => api.name` as `(api => api).name`; Bicep has no member
    // of a lambda, so this is always that: the member belongs to the lambda's body.
    if (typeof object === 'function') return (...args: Value[]) => access(object(...args));
    return access(object);
  }

  private call(node: Node, scope: Scope): Value {
    const name = node.childForFieldName('function')?.text ?? '';
    const args = (node.childForFieldName('arguments')?.namedChildren ?? []).filter(
      (arg) => arg.type !== 'comment',
    );
    const builtin = FUNCTIONS[name];
    if (builtin === undefined) throw new Error(`function ${name}() is not modelled`);
    return builtin(args.map((arg) => this.evaluate(arg, scope)));
  }

  private binary(node: Node, scope: Scope): Value {
    const left = node.childForFieldName('left') ?? undefined;
    const right = node.childForFieldName('right') ?? undefined;
    const operator = node.children.find((child) => !child.isNamed)?.text;
    if (operator === '??') {
      const value = this.evaluate(left, scope);
      return value === null ? this.evaluate(right, scope) : value;
    }
    const a = this.evaluate(left, scope);
    const b = this.evaluate(right, scope);
    switch (operator) {
      case '==':
        return equals(a, b);
      case '!=':
        return !equals(a, b);
      case '&&':
      case '||':
        if (typeof a !== 'boolean' || typeof b !== 'boolean') {
          throw new Error(`${node.text}: ${operator} of non-bools`);
        }
        return operator === '&&' ? a && b : a || b;
      case '<':
        return asNumber(a, '<') < asNumber(b, '<');
      case '<=':
        return asNumber(a, '<=') <= asNumber(b, '<=');
      case '>':
        return asNumber(a, '>') > asNumber(b, '>');
      case '>=':
        return asNumber(a, '>=') >= asNumber(b, '>=');
      default:
        throw new Error(`operator ${operator} is not modelled`);
    }
  }
}
