// SPDX-License-Identifier: MIT
// Test double of ComposableCoW for nexum's TWAP keeper tests: emits the real
// ConditionalOrderCreated event and answers getTradeableOrderWithSignature with whatever a
// test scripted for those params — a ready order, or one of the standard revert hints.
// Rebuild the checked-in bytecode with scripts/build-contracts.sh after editing.
pragma solidity 0.8.28;

contract MockComposableCoW {
    struct ConditionalOrderParams {
        address handler;
        bytes32 salt;
        bytes staticInput;
    }

    /// GPv2Order.Data, as the settlement contract defines it.
    struct OrderData {
        address sellToken;
        address buyToken;
        address receiver;
        uint256 sellAmount;
        uint256 buyAmount;
        uint32 validTo;
        bytes32 appData;
        uint256 feeAmount;
        bytes32 kind;
        bool partiallyFillable;
        bytes32 sellTokenBalance;
        bytes32 buyTokenBalance;
    }

    event ConditionalOrderCreated(address indexed owner, ConditionalOrderParams params);

    error PollTryNextBlock(string reason);
    error PollTryAtBlock(uint256 blockNumber, string reason);
    error PollTryAtEpoch(uint256 timestamp, string reason);
    error PollNever(string reason);
    error OrderNotValid(string reason);

    /// What `getTradeableOrderWithSignature` answers for a params hash.
    enum Mode {
        Unscripted,
        Ready,
        TryNextBlock,
        TryAtBlock,
        TryAtEpoch,
        Never,
        NotValid
    }

    struct Script {
        Mode mode;
        uint256 arg;
        OrderData order;
    }

    mapping(bytes32 => Script) private scripts;

    function hash(ConditionalOrderParams memory params) public pure returns (bytes32) {
        return keccak256(abi.encode(params));
    }

    function create(ConditionalOrderParams calldata params) external {
        emit ConditionalOrderCreated(msg.sender, params);
    }

    function script(bytes32 paramsHash, Mode mode, uint256 arg, OrderData calldata order) external {
        scripts[paramsHash] = Script(mode, arg, order);
    }

    function getTradeableOrderWithSignature(
        address owner,
        ConditionalOrderParams calldata params,
        bytes calldata,
        bytes32[] calldata
    ) external view returns (OrderData memory order, bytes memory signature) {
        Script storage s = scripts[hash(params)];
        if (s.mode == Mode.Ready) {
            // ComposableCoW's EIP-1271 signature: the order and the params it came from.
            return (s.order, abi.encode(s.order, params, owner));
        }
        if (s.mode == Mode.TryAtBlock) revert PollTryAtBlock(s.arg, "scripted");
        if (s.mode == Mode.TryAtEpoch) revert PollTryAtEpoch(s.arg, "scripted");
        if (s.mode == Mode.Never) revert PollNever("scripted");
        if (s.mode == Mode.NotValid) revert OrderNotValid("scripted");
        revert PollTryNextBlock(s.mode == Mode.TryNextBlock ? "scripted" : "unscripted");
    }
}
