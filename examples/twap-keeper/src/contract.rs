//! ComposableCoW's interface, as the keeper uses it.

use nexum_guest::sol_types::sol;

sol! {
    #![sol(alloy_sol_types = nexum_guest::sol_types)]

    /// `IConditionalOrder.ConditionalOrderParams`.
    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct ConditionalOrderParams {
        address handler;
        bytes32 salt;
        bytes staticInput;
    }

    /// `GPv2Order.Data`.
    #[derive(Debug)]
    struct GPv2OrderData {
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

    function getTradeableOrderWithSignature(
        address owner,
        ConditionalOrderParams params,
        bytes offchainInput,
        bytes32[] proof
    ) external view returns (GPv2OrderData order, bytes signature);

    error PollTryNextBlock(string reason);
    error PollTryAtBlock(uint256 blockNumber, string reason);
    error PollTryAtEpoch(uint256 timestamp, string reason);
    error PollNever(string reason);
    error OrderNotValid(string reason);
}
