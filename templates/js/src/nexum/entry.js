// The component's two exports, built from a module file's plain functions: converts the
// WIT values to friendly ones, picks the handler, and turns every failure into a WIT
// fault. src/main.js and FakeHost both go through here, so tests run this exact path.

import { toBlock, toConfig, toLogs, toTick } from './convert.js';
import { Fault, toFaultVariant } from './errors.js';

/** Which handler serves each WIT event case, and how its value is converted. */
const HANDLERS = {
  block: ['onBlock', toBlock],
  'chain-logs': ['onLogs', toLogs],
  tick: ['onTick', toTick],
};

/**
 * `init` and `onEvent` as the world exports them, for `module` (the namespace of a
 * module file exporting init, onBlock, onLogs, onTick). `file` names it in errors.
 */
export function entry(module, file = 'module.js') {
  return {
    init(config) {
      guard(() => synchronous('init', module.init?.(toConfig(config))));
    },
    onEvent(event) {
      guard(() => {
        const [name, convert] = HANDLERS[event.tag] ?? [];
        if (name === undefined) {
          throw new Fault('unsupported', `${file} cannot handle an event of kind '${event.tag}'`);
        }
        if (typeof module[name] !== 'function') {
          throw new Fault('internal', `${file} has no ${name} handler`);
        }
        synchronous(name, module[name](convert(event.val)));
      });
    },
  };
}

/**
 * Runs a handler. An export that throws anything but a fault variant traps the instance
 * (nexum restarts it and replays the event), so every error becomes a fault here.
 */
function guard(run) {
  try {
    run();
  } catch (error) {
    throw toFaultVariant(error);
  }
}

/**
 * Refuses a Promise: host calls are synchronous and a call ends when the export returns,
 * so work left in a promise would run outside it, its writes uncommitted, its errors unseen.
 */
function synchronous(name, result) {
  if (result !== null && typeof result === 'object' && typeof result.then === 'function') {
    result.then(undefined, () => {}); // reported here, not as an unhandled rejection
    throw new Fault('internal', `${name} returned a Promise: handlers must be synchronous (no async)`);
  }
}
