// The store's BlobStore: blobs/<algorithm>/<hex> under the root (private to src/store; users
// see it as Store::blobs()).
#pragma once

#include <minibuild/store/blob_store.hpp>
#include <minibuild/store/store_fs.hpp>

#include <string>

namespace minibuild::store {

class TempArea;

class LocalBlobStore : public BlobStore {
public:
  LocalBlobStore(StoreFs& fs, TempArea& temp) : m_fs(fs), m_temp(temp) {}

  Result<std::unique_ptr<BlobWriter>> open_writer(const BlobExpectation& expected) override;
  Result<std::unique_ptr<oci::VerifiedSource>>
  get(const oci::Digest& digest, std::optional<std::uint64_t> expected_size) override;
  Result<std::optional<BlobInfo>> stat(const oci::Digest& digest) override;
  Result<void> remove(const oci::Digest& digest) override;
  Result<std::vector<oci::Digest>> list() override;

  /// "blobs/sha256" for a sha256 digest.
  static std::string dir_of(oci::DigestAlgorithm algorithm);
  /// "blobs/sha256/<hex>".
  static std::string path_of(const oci::Digest& digest);

private:
  StoreFs& m_fs;
  TempArea& m_temp;
};

} // namespace minibuild::store
