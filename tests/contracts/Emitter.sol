// SPDX-License-Identifier: MIT
// Test contract for nexum's end-to-end tests: emits events with indexed and unindexed
// fields on demand, and reverts on demand. Rebuild the checked-in bytecode with
// scripts/build-contracts.sh after editing.
pragma solidity 0.8.28;

contract Emitter {
    /// Two indexed fields and an unindexed payload.
    event Ping(address indexed sender, uint256 indexed seq, bytes payload);
    /// One indexed field and an unindexed string.
    event Pong(uint256 indexed seq, string note);

    error TooEarly(uint256 at);

    uint256 public count;

    function ping(uint256 seq, bytes calldata payload) external {
        emit Ping(msg.sender, seq, payload);
    }

    function pong(uint256 seq, string calldata note) external {
        emit Pong(seq, note);
    }

    /// Emits `n` Ping events numbered from the running count, then a Pong.
    function burst(uint256 n) external {
        uint256 first = count;
        for (uint256 i = 0; i < n; i++) {
            emit Ping(msg.sender, first + i, "");
        }
        count = first + n;
        emit Pong(first + n, "burst");
    }

    function fail(string calldata why) external pure {
        revert(why);
    }

    function failCustom(uint256 at) external pure {
        revert TooEarly(at);
    }
}
