#include "aggregates.h"

#include <map>

#include "bank/bank_aggregate.h"
#include "bank/transfer.h"
#include "clicks/clicks.h"
#include "invoices/invoice_aggregate.h"

namespace leftfold::cli {
namespace {

const std::map<std::string, AggregateDefinition>& Registry() {
  static const auto* registry = [] {
    auto* m = new std::map<std::string, AggregateDefinition>();
    for (AggregateDefinition d :
         {bank::AccountDefinition(), bank::TransferDefinition(),
          AggregateDefinition(clicks::ClicksAggregate()), invoices::InvoiceDefinition()}) {
      m->emplace(d.type(), d);
    }
    return m;
  }();
  return *registry;
}

}  // namespace

const AggregateDefinition* FindAggregate(const std::string& type) {
  auto it = Registry().find(type);
  return it == Registry().end() ? nullptr : &it->second;
}

std::vector<std::string> KnownAggregateTypes() {
  std::vector<std::string> out;
  for (const auto& [type, definition] : Registry()) out.push_back(type);
  return out;
}

}  // namespace leftfold::cli
