using Broker.Configuration;
using Broker.Diagnostics;
using Broker.Routing;
using Broker.Security;

namespace Broker.Sessions;

/// <summary>What every session shares: settings, backends per virtual host, security, metrics, the clock.</summary>
internal sealed record SessionContext(
    BrokerOptions Options,
    VirtualHosts VirtualHosts,
    SessionRegistry Registry,
    Authenticator Authenticator,
    DestinationAuthorizer Authorizer,
    BrokerMetrics Metrics,
    TimeProvider Time);
