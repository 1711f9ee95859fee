// The component's entry: binds the host's WIT imports to the helpers and exports the
// world's init and on-event, served by src/module.js. Write your module there, not here.

import * as chain from 'nexum:host/chain@0.2.1';
import * as localStore from 'nexum:host/local-store@0.2.1';
import * as logging from 'nexum:host/logging@0.2.1';
import { bind, entry } from './nexum/index.js';
import * as module from './module.js';

bind({ chain, localStore, logging });
const world = entry(module);

export function init(config) {
  world.init(config);
}

export function onEvent(event) {
  world.onEvent(event);
}
