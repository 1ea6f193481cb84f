namespace Broker.Client;

/// <summary>Where a <see cref="StompClient"/>'s connection stands.</summary>
public enum StompConnectionState
{
    /// <summary>Not connected yet.</summary>
    Disconnected,

    /// <summary>Connecting for the first time.</summary>
    Connecting,

    /// <summary>Connected; operations go straight to the broker.</summary>
    Connected,

    /// <summary>The connection was lost; reconnecting. Operations wait until connected again.</summary>
    Reconnecting,

    /// <summary>Disposed, or reconnection gave up. Operations throw.</summary>
    Closed,
}

/// <summary>A change of <see cref="StompClient.State"/>.</summary>
/// <param name="previous">The state before.</param>
/// <param name="current">The state now.</param>
/// <param name="error">Why the connection was lost, if it was.</param>
public sealed class StompConnectionStateChangedEventArgs(StompConnectionState previous, StompConnectionState current, Exception? error) : EventArgs
{
    /// <summary>The state before.</summary>
    public StompConnectionState Previous { get; } = previous;

    /// <summary>The state now.</summary>
    public StompConnectionState Current { get; } = current;

    /// <summary>Why the connection was lost, if it was.</summary>
    public Exception? Error { get; } = error;
}
